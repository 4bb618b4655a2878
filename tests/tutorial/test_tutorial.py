"""The tutorial's tests, collected here again under the tutorial's conftest."""

# NOTE: pytest collects test functions that a module imports, and runs them
#   with the fixtures visible from this folder: the tutorial's.
from ..test_images import test_list_images  # noqa: F401
from ..test_images import test_missing_in_store  # noqa: F401
from ..test_images import test_post_one_image  # noqa: F401
from ..test_images import test_post_three_images  # noqa: F401
from ..test_thumbnails import test_missing_in_store as test_no_thumbnail  # noqa: F401
from ..test_thumbnails import test_missing_size  # noqa: F401
from ..test_thumbnails import test_thumbnail_caching  # noqa: F401
from ..test_thumbnails import test_thumbnails  # noqa: F401
