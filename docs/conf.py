"""Sphinx configuration for asgilook's documentation.

Built in CI with warnings as errors (see .ci/run and tox.ini):

    sphinx-build -n -W --keep-going -b html docs docs/_build/html
"""

project = 'asgilook'
author = 'the asgilook contributors'
copyright = 'the asgilook contributors'

# NOTE: No autodoc: the pages are prose, so that building them needs neither
#   the package nor its dependencies, only Sphinx.
extensions = []

root_doc = 'index'
exclude_patterns = ['_build']

# NOTE: Literal blocks are shell sessions, JSON and output; each block that
#   wants highlighting names its language.
highlight_language = 'none'

# NOTE: The built-in theme, so that the docs extra needs nothing but Sphinx.
html_theme = 'alabaster'
html_theme_options = {
    'description': 'Image sharing and thumbnails on Falcon ASGI',
    'fixed_sidebar': True,
}
html_sidebars = {
    '**': ['about.html', 'navigation.html', 'searchbox.html'],
}
