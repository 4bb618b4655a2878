"""asgilook: an image-sharing and thumbnail service on Falcon's ASGI flavour."""
