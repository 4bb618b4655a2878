import sys

from .app import create_app
from .config import Config
from .startup import show_service_logs

# NOTE: uvicorn's exit status for an app that cannot start: its supervisor
#   then stops, rather than starting the same failing worker again and again.
STARTUP_FAILURE = 3

try:
    app = create_app(Config.for_service())
except ValueError as ex:
    # NOTE: One line that names the setting, not a traceback, in one write
    #   (workers starting together must not mix their lines); and no start.
    sys.stderr.write(f'asgilook: {ex}\n')
    sys.exit(STARTUP_FAILURE)

# NOTE: After create_app, which gives the access log a handler of its own.
show_service_logs()
