"""The gallery in a real headless Chromium, against live services.

Debian's ``chromium``, driven by Playwright for Python through
``executable_path`` (Playwright's own browser downloads are never used).
Screenshots go to ``$ASGILOOK_TEST_ARTIFACTS`` when set, else to the test's
temporary directory.
"""

import io
import json
import os
import pathlib
import re
import time
import urllib.parse

import PIL.Image
import PIL.ImageDraw
import pytest

from . import corpus
from .servers import require_binary
from .servers import Service

TOKEN = 'operator-token-0123456789'
PHONE = {'width': 400, 'height': 800}
DESKTOP = {'width': 1280, 'height': 800}
# NOTE: The listing's first page, as the gallery asks for it.
LISTING = re.compile(r'/images\?limit=60$')
# NOTE: Hues for the pictures the gallery shows: sky, sunset, moss, dusk.
PALETTES = [
    ((36, 99, 160), (250, 214, 120)),
    ((204, 82, 60), (255, 196, 110)),
    ((46, 110, 74), (214, 226, 140)),
    ((52, 40, 96), (236, 140, 180)),
]


@pytest.fixture(scope='module')
def browser():
    chromium = require_binary('chromium')
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        yield browser
        browser.close()


@pytest.fixture
def artifacts(tmp_path):
    path = pathlib.Path(os.environ.get('ASGILOOK_TEST_ARTIFACTS') or tmp_path)
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def services():
    started = []

    def start(storage, **environ):
        # NOTE: A closed stream is noticed at its next keep-alive: soon, so
        #   that the services stop at once.
        environ.setdefault('ASGI_LOOK_EVENTS_KEEPALIVE', '1')
        started.append(Service(storage, **environ))
        return started[-1]

    yield start
    for service in started:
        if service.process is not None:
            service.stop()


@pytest.fixture
def pages(browser):
    """Opens a gallery page in a fresh browser context; at the end, no page
    may have had a script error."""
    contexts = []
    errors = []

    def open_page(service, viewport, path='/', routes=(), live=True):
        context = browser.new_context(viewport=viewport)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.on('pageerror', lambda error: errors.append(error))
        # NOTE: Playwright's routes stand in for a proxy in front of the
        #   service: they see (and may answer) every request of the page.
        for url, handler in routes:
            page.route(url, handler)
        page.goto(f'http://127.0.0.1:{service.port}{path}')
        if live and path in ('/', '/gallery'):
            page.wait_for_selector('#live[data-state=live]')
        return page

    yield open_page
    # NOTE: Before the services stop: an open event stream holds uvicorn.
    for context in contexts:
        context.close()
    assert errors == []


def picture(path, size, palette, seed):
    """A landscape of bands and a sun, as a PNG file."""
    sky, sun = palette
    image = PIL.Image.new('RGB', size, sky)
    draw = PIL.ImageDraw.Draw(image)
    width, height = size
    for band in range(6):
        shade = tuple(max(0, c - 18 * band) for c in sky)
        top = height // 2 + band * height // 14
        draw.rectangle([(0, top), (width, height)], fill=shade)
    x = width * (0.25 + 0.15 * seed)
    draw.ellipse(
        [(x - width / 9, height / 5), (x + width / 9, height / 5 + width * 2 / 9)],
        fill=sun,
    )
    output = io.BytesIO()
    image.save(output, 'PNG')
    path.write_bytes(output.getvalue())
    return str(path)


def current_source(page, index=0):
    page.wait_for_function(
        f"""() => {{
            const img = document.querySelectorAll('#grid img')[{index}];
            return img && img.complete && img.naturalWidth > 0;
        }}"""
    )
    return page.eval_on_selector_all(
        '#grid img', f'images => images[{index}].currentSrc'
    )


def test_upload_live_delete_in_two_pages(services, pages, real_redis, tmp_path):
    # NOTE: Two services, as two hosts: one storage, one Redis. Uploads are
    #   open to anyone; deletes need a token, as a public image host's do.
    storage = tmp_path / 'shared'
    environ = {
        'ASGI_LOOK_REDIS_URL': real_redis.url,
        'ASGI_LOOK_API_TOKENS': TOKEN,
        'ASGI_LOOK_ANONYMOUS_UPLOADS': 'true',
    }
    a = services(storage, **environ).start()
    b = services(storage, **environ).start()
    desktop = pages(a, DESKTOP)
    phone = pages(b, PHONE, '/gallery')
    assert desktop.url.endswith('/gallery')
    assert desktop.is_visible('#empty')

    photo = picture(tmp_path / 'sunrise.png', (1600, 1200), PALETTES[0], 0)
    text = tmp_path / 'notes.txt'
    text.write_text('not an image')
    desktop.set_input_files('#files', [photo, str(text)])

    desktop.wait_for_selector('#uploads li.stored')
    failed = desktop.inner_text('#uploads li.failed')
    assert 'notes.txt' in failed
    assert 'Unsupported image format: The upload is not an image' in failed
    assert desktop.is_hidden('#empty')

    # NOTE: The other page, on the other service, heard it through Redis.
    phone.wait_for_selector('#grid li')
    source = current_source(phone)
    assert '/thumbnails/' in source and '/400x300.' in source, source
    assert phone.evaluate('document.documentElement.scrollWidth') <= PHONE['width']

    # NOTE: The phone's browser has no delete token: the service says why.
    phone.click('#grid li button')
    phone.click('#delete')
    phone.wait_for_selector('#viewer-error:has-text("Token needed")')
    assert 'Authorization: Bearer' in phone.inner_text('#viewer-error')
    phone.keyboard.press('Escape')
    assert not phone.eval_on_selector('#viewer', 'dialog => dialog.open')

    # NOTE: The uploader's browser kept its delete token; by keyboard only.
    desktop.focus('#grid li button')
    desktop.keyboard.press('Enter')
    assert desktop.eval_on_selector('#viewer', 'dialog => dialog.open')
    desktop.focus('#delete')
    desktop.keyboard.press('Enter')
    for page in (desktop, phone):
        page.wait_for_selector('#grid li', state='detached')
        page.wait_for_selector('#empty', state='visible')
    assert desktop.evaluate("localStorage.getItem('asgilook.deleteTokens')") == '{}'


def test_the_page_is_labelled_and_fits_phone_and_desktop(
    services, pages, tmp_path, artifacts
):
    service = services(tmp_path / 'images').start()
    desktop = pages(service, DESKTOP)
    files = [
        picture(tmp_path / f'{n}.png', (1200 + 160 * n, 800), palette, n)
        for n, palette in enumerate(PALETTES)
    ]
    desktop.set_input_files('#files', files)
    desktop.wait_for_function(
        "() => document.querySelectorAll('#uploads li.stored').length === 4"
    )
    phone = pages(service, PHONE)
    for page in (desktop, phone):
        page.wait_for_function(
            "() => document.querySelectorAll('#grid li').length === 4"
        )
        for index in range(4):
            assert '/thumbnails/' in current_source(page, index)
        # NOTE: Every control has a label; every picture says what it is.
        assert page.evaluate(
            "[...document.querySelectorAll('input')].every(i => i.labels.length)"
        )
        alts = page.eval_on_selector_all('img', 'images => images.map(i => i.alt)')
        assert len(alts) == 4
        assert all(alt.startswith('Image of ') for alt in alts)
        assert (
            page.evaluate('document.documentElement.scrollWidth')
            <= (page.viewport_size['width'])
        )
    columns = "getComputedStyle(document.getElementById('grid'))"
    columns += ".gridTemplateColumns.split(' ').length"
    assert desktop.evaluate(columns) == 4
    assert phone.evaluate(columns) == 1
    desktop.screenshot(path=artifacts / 'gallery-desktop.png')
    phone.screenshot(path=artifacts / 'gallery-phone.png', full_page=True)
    assert (artifacts / 'gallery-desktop.png').stat().st_size > 0


def test_a_page_on_another_origin_uses_the_api_when_allowed(services, pages, tmp_path):
    # NOTE: A page of b's (not the gallery, whose policy keeps it to its
    #   own origin) is the page on another origin; a is the API.
    b = services(tmp_path / 'b')
    origin = f'http://127.0.0.1:{b.port}'
    a = services(tmp_path / 'a', ASGI_LOOK_CORS_ORIGINS=origin)
    # NOTE: Its JSON's URLs then work from any page, as they are.
    a.environ['ASGI_LOOK_PUBLIC_URL'] = f'http://127.0.0.1:{a.port}'
    a.start()
    b.start()
    page = pages(b, PHONE, '/healthz')
    api = f'http://127.0.0.1:{a.port}'
    png = picture(tmp_path / 'p.png', (640, 480), PALETTES[2], 1)
    result = page.evaluate(
        """async ([api, bytes]) => {
            const form = new FormData();
            form.append('image', new Blob([new Uint8Array(bytes)]), 'p.png');
            const created = await fetch(api + '/images', {method: 'POST', body: form});
            const image = await created.json();
            const listing = await fetch(api + '/images?limit=1');
            const deleted = await fetch(image.image, {
                method: 'DELETE',
                headers: {'Authorization': 'Bearer ' + image.delete_token},
            });
            return {
                status: created.status,
                location: created.headers.get('Location'),
                listed: (await listing.json()).length,
                etag: listing.headers.get('ETag'),
                deleted: deleted.status,
                image: image.image,
            };
        }""",
        [api, list(pathlib.Path(png).read_bytes())],
    )
    assert result['status'] == 201
    assert result['location'] == result['image']
    assert result['image'].startswith(f'{api}/images/')
    assert result['listed'] == 1
    assert result['etag']
    assert result['deleted'] == 204
    # NOTE: An origin the operator did not name cannot read the API.
    refused = pages(a, PHONE, '/healthz').evaluate(
        """async (url) => {
            try { await fetch(url); return 'read'; }
            catch (error) { return 'refused'; }
        }""",
        f'http://127.0.0.1:{b.port}/images',
    )
    assert refused == 'refused'


def upload(service, data, name='image.png'):
    """Upload as another client would: the image's JSON."""
    body, content_type = corpus.multipart([('image', name, 'image/png', data)])
    status, _, text = service.request(
        'POST', '/images', body=body, headers={'Content-Type': content_type}
    )
    assert status == 201, text
    return json.loads(text)


def seed(service, count, tmp_path):
    """Upload ``count`` small pictures, oldest first; their ids."""
    return [
        upload(service, pathlib.Path(path).read_bytes())['id']
        for path in (
            picture(tmp_path / f'seed-{n}.png', (96, 72), PALETTES[n % 4], n % 4)
            for n in range(count)
        )
    ]


def listing(service):
    """The ids of the whole listing, in its order (oldest first)."""
    return [image['id'] for image in json.loads(service.request('GET', '/images')[2])]


def tiles(page):
    return page.eval_on_selector_all(
        '#grid li', 'items => items.map(i => i.dataset.id)'
    )


def wait_for_tiles(page, count):
    page.wait_for_function(
        f"() => document.querySelectorAll('#grid li').length === {count}"
    )


def test_the_stream_is_opened_again_after_a_refusal(
    services, pages, tmp_path, artifacts
):
    # NOTE: As a proxy in front of a restarting service would: 503 to
    #   /events until told otherwise. The browser closes a stream for good
    #   on any answer but a 200 event stream.
    service = services(tmp_path / 'images').start()
    attempts = []
    refusing = True

    def events(route):
        attempts.append(time.monotonic())
        if refusing:
            route.fulfill(
                status=503,
                content_type='application/json',
                body='{"title": "Service Unavailable"}',
            )
        else:
            route.continue_()

    page = pages(service, DESKTOP, routes=[('**/events', events)], live=False)
    page.wait_for_selector('#empty', state='visible')
    page.wait_for_selector('#live[data-state=offline]')
    assert page.inner_text('#live') == 'Offline; trying again in 1 s…'

    # NOTE: Uploaded while the page has no stream: only the listing tells.
    created = upload(service, corpus.encode(corpus.pattern((320, 240)), 'PNG'))
    page.wait_for_function(
        "() => document.getElementById('live').textContent.includes('in 2 s')"
    )
    refusing = False
    page.wait_for_selector('#live[data-state=live]')
    page.wait_for_selector(f'#grid li[data-id="{created["id"]}"]')
    assert tiles(page) == [created['id']]
    assert page.is_hidden('#empty')
    # NOTE: Refused at once, after 1 s, then opened after 2 s more.
    assert len(attempts) == 3
    first, second = attempts[1] - attempts[0], attempts[2] - attempts[1]
    assert 0.8 < first < 1.8, attempts
    assert 1.8 < second < 3.5, attempts

    # NOTE: And it is live again: the next upload arrives by the stream.
    later = upload(service, corpus.encode(corpus.pattern((240, 320)), 'PNG'))
    page.wait_for_selector(f'#grid li[data-id="{later["id"]}"]')
    assert tiles(page) == [created['id'], later['id']]
    assert len(attempts) == 3

    # NOTE: The open reset the backoff: the next refusal waits 1 s, not 4.
    refusing = True
    service.kill()
    service.start()
    page.wait_for_function(
        "() => document.getElementById('live').textContent"
        " === 'Offline; trying again in 1 s…'"
    )
    refusing = False
    page.wait_for_selector('#live[data-state=live]')
    assert tiles(page) == [created['id'], later['id']]
    page.screenshot(path=artifacts / 'gallery-live-again.png')


def test_an_image_stored_while_the_stream_opens_is_shown(services, pages, tmp_path):
    """The listing is read once the stream is open: an image stored between
    the page's start and its stream's is in one or the other."""
    service = services(tmp_path / 'images').start()
    held = []

    def hold(route):
        held.append(route)

    page = pages(service, DESKTOP, routes=[('**/events', hold)], live=False)
    page.wait_for_function('() => document.readyState === "complete"')
    assert len(held) == 1
    created = upload(service, corpus.encode(corpus.pattern((320, 240)), 'PNG'))
    # NOTE: Well before the page would read the listing without a stream.
    held[0].continue_()
    page.wait_for_selector('#live[data-state=live]', timeout=2_000)
    page.wait_for_selector(f'#grid li[data-id="{created["id"]}"]', timeout=2_000)
    assert tiles(page) == [created['id']]


def test_load_more_hands_focus_to_the_first_new_tile(
    services, pages, tmp_path, artifacts
):
    service = services(tmp_path / 'images').start()
    ids = seed(service, 61, tmp_path)
    page = pages(service, DESKTOP)
    wait_for_tiles(page, 60)

    # NOTE: By keyboard only; the last page hides the button.
    page.focus('#more')
    page.keyboard.press('Enter')
    wait_for_tiles(page, 61)
    page.wait_for_selector('#more', state='hidden')
    focused = page.evaluate(
        '() => [document.activeElement.className, '
        "document.activeElement.closest('li')?.dataset.id]"
    )
    assert focused == ['tile', ids[60]]
    page.keyboard.press('Enter')
    assert page.eval_on_selector('#viewer', 'dialog => dialog.open')
    assert page.inner_text('#viewer-title') == 'Image of 96 × 72'
    page.screenshot(path=artifacts / 'gallery-load-more.png')


def test_a_live_image_on_a_later_page_is_shown_once_in_order(services, pages, tmp_path):
    service = services(tmp_path / 'images').start()
    ids = seed(service, 61, tmp_path)
    page = pages(service, DESKTOP)
    wait_for_tiles(page, 60)
    assert tiles(page) == ids[:60]

    # NOTE: Newer than everything listed: it is on the page not loaded yet.
    created = upload(service, corpus.encode(corpus.pattern((320, 240)), 'PNG'))
    wait_for_tiles(page, 61)
    assert tiles(page) == [*ids[:60], created['id']]

    page.click('#more')
    wait_for_tiles(page, 62)
    page.wait_for_selector('#more', state='hidden')
    assert tiles(page) == listing(service) == [*ids, created['id']]


def test_a_failed_upload_shows_failure_not_a_full_bar(
    services, pages, tmp_path, artifacts
):
    service = services(tmp_path / 'images').start()
    page = pages(service, PHONE)

    def unreachable(route):
        # NOTE: The upload of this one never reaches the service.
        if route.request.method == 'POST' and 'lost.png' in (
            route.request.post_data_buffer or b''
        ).decode('latin-1'):
            route.abort()
        else:
            route.continue_()

    page.route('**/images', unreachable)
    photo = picture(tmp_path / 'sunrise.png', (640, 480), PALETTES[1], 1)
    lost = picture(tmp_path / 'lost.png', (640, 480), PALETTES[2], 2)
    text = tmp_path / 'notes.txt'
    text.write_text('not an image')
    page.set_input_files('#files', [photo, str(text), lost])
    page.wait_for_function(
        "() => document.querySelectorAll('#uploads li:is(.stored, .failed)')"
        '.length === 3'
    )

    # NOTE: The service's own words for it, as another client gets them.
    body, content_type = corpus.multipart([('image', 'notes.txt', 'text/plain', b'x')])
    status, _, answer = service.request(
        'POST', '/images', body=body, headers={'Content-Type': content_type}
    )
    assert status == 415
    problem = json.loads(answer)
    refusal = f'{problem["title"]}: {problem["description"]}'
    rows = page.eval_on_selector_all(
        '#uploads li',
        """rows => Object.fromEntries(rows.map(row => [
            row.querySelector('.name').textContent,
            [row.className, row.querySelector('progress')?.value ?? null,
             row.querySelector('.state')?.textContent ?? null,
             row.querySelector('.outcome').textContent],
        ]))""",
    )
    assert rows == {
        'sunrise.png': ['stored', 100, None, 'Stored.'],
        'notes.txt': ['failed', None, 'Failed', refusal],
        'lost.png': [
            'failed',
            None,
            'Failed',
            'The upload did not reach the service; try again.',
        ],
    }
    assert page.evaluate('document.documentElement.scrollWidth') <= PHONE['width']
    page.screenshot(path=artifacts / 'gallery-failed-uploads.png')


def stream(*events, retry=3_600_000):
    """A hand-written event stream: ``(name, data)`` pairs. The browser
    opens it again only after ``retry`` milliseconds."""
    body = f'retry: {retry}\n\n'
    return body + ''.join(f'event: {name}\ndata: {data}\n\n' for name, data in events)


def answer_stream(route, *events, retry=3_600_000):
    route.fulfill(
        status=200,
        content_type='text/event-stream',
        body=stream(*events, retry=retry),
    )


def until(page, condition):
    """Wait (letting Playwright call the route handlers) until ``condition()``."""
    deadline = time.monotonic() + 15
    while not condition():
        assert time.monotonic() < deadline, 'timed out'
        page.wait_for_timeout(20)


def delete(service, image):
    """Delete as another client would."""
    path = urllib.parse.urlsplit(image['image']).path
    status, _, text = service.request('DELETE', path)
    assert status == 204, text


def focused(page):
    """The id of the tile that has keyboard focus, or of the element."""
    return page.evaluate(
        """() => {
            const element = document.activeElement;
            return element.closest('#grid li')?.dataset.id || element.id
                || element.tagName;
        }"""
    )


@pytest.mark.parametrize('deleted_elsewhere', [False, True])
def test_the_large_view_deletes_after_a_resync(
    services, pages, tmp_path, deleted_elsewhere
):
    service = services(tmp_path / 'images').start()
    image = upload(service, corpus.encode(corpus.pattern((320, 240)), 'PNG'))
    streams = []
    listings = []

    def events(route):
        # NOTE: The first stream opens and ends at once, as a dropped
        #   connection does; the browser's reconnect is held.
        streams.append(route)
        if len(streams) == 1:
            answer_stream(route, retry=100)

    def listing_route(route):
        listings.append(route)
        if len(listings) > 1 and not deleted_elsewhere:
            route.fulfill(status=503, json={'title': 'Service Unavailable'})
        else:
            route.continue_()

    routes = [('**/events', events), (LISTING, listing_route)]
    page = pages(service, DESKTOP, routes=routes, live=False)
    page.click(f'#grid li[data-id="{image["id"]}"] button')
    until(page, lambda: len(streams) == 2)
    if deleted_elsewhere:
        delete(service, image)
    answer_stream(streams[1], ('resync', '{}'))
    # NOTE: The listing was read again (or refused); the large view stays open.
    page.wait_for_selector('#grid li', state='detached')
    until(page, lambda: len(listings) >= 2)
    if not deleted_elsewhere:
        page.wait_for_selector('#status:has-text("Service Unavailable")')
    assert page.eval_on_selector('#viewer', 'dialog => dialog.open')

    page.click('#delete')
    page.wait_for_selector('#viewer', state='hidden')
    assert page.inner_text('#status') == 'Image deleted.'
    assert listing(service) == []
    assert focused(page) == 'images-heading'


def test_closing_the_large_view_after_a_resync_focuses_the_new_tile(
    services, pages, tmp_path
):
    service = services(tmp_path / 'images').start()
    image = upload(service, corpus.encode(corpus.pattern((320, 240)), 'PNG'))
    streams = []

    def events(route):
        streams.append(route)
        if len(streams) == 1:
            answer_stream(route, retry=100)

    page = pages(service, DESKTOP, routes=[('**/events', events)], live=False)
    tile = f'#grid li[data-id="{image["id"]}"]'
    page.click(f'{tile} button')
    page.eval_on_selector(tile, 'item => { item.dataset.old = ""; }')
    until(page, lambda: len(streams) == 2)
    answer_stream(streams[1], ('resync', '{}'))
    # NOTE: The listing read again: the same image, on a tile made anew.
    page.wait_for_selector(f'{tile}:not([data-old])')
    page.keyboard.press('Escape')
    page.wait_for_selector('#viewer', state='hidden')
    assert focused(page) == image['id']


def test_a_listing_page_in_flight_does_not_bring_back_a_deleted_image(
    services, pages, tmp_path
):
    service = services(tmp_path / 'images').start()
    gone, kept = (
        upload(service, corpus.encode(corpus.pattern((64, 48)), 'PNG'))
        for _ in range(2)
    )
    held = []
    page = pages(service, DESKTOP, routes=[(LISTING, lambda route: held.append(route))])
    until(page, lambda: held)
    # NOTE: The page is read by the service before the delete, and reaches
    #   the browser after the delete's event (and a later upload's) did.
    response = held[0].fetch()
    delete(service, gone)
    later = upload(service, corpus.encode(corpus.pattern((48, 64)), 'PNG'))
    page.wait_for_selector(f'#grid li[data-id="{later["id"]}"]')
    held[0].fulfill(response=response)
    page.wait_for_selector(f'#grid li[data-id="{kept["id"]}"]')
    assert tiles(page) == [kept['id'], later['id']]


def test_focus_goes_to_a_neighbouring_tile_when_the_viewed_image_goes(
    services, pages, tmp_path
):
    service = services(tmp_path / 'images').start()
    a, b, c, d = (
        upload(service, corpus.encode(corpus.pattern((64 + n, 48)), 'PNG'))
        for n in range(4)
    )
    page = pages(service, DESKTOP)
    wait_for_tiles(page, 4)

    def view(image):
        page.focus(f'#grid li[data-id="{image["id"]}"] button')
        page.keyboard.press('Enter')
        assert page.eval_on_selector('#viewer', 'dialog => dialog.open')

    def gone(image):
        page.wait_for_selector(f'#grid li[data-id="{image["id"]}"]', state='detached')
        assert not page.eval_on_selector('#viewer', 'dialog => dialog.open')

    # NOTE: Deleted from the view: the next tile.
    view(b)
    page.focus('#delete')
    page.keyboard.press('Enter')
    gone(b)
    assert focused(page) == c['id']
    # NOTE: Deleted elsewhere while viewed, the last one: the previous tile.
    view(d)
    delete(service, d)
    gone(d)
    assert focused(page) == c['id']
    # NOTE: Deleted elsewhere while not viewed: focus stays where it is.
    delete(service, a)
    page.wait_for_selector(f'#grid li[data-id="{a["id"]}"]', state='detached')
    assert focused(page) == c['id']
    # NOTE: No tile left: the heading.
    view(c)
    delete(service, c)
    gone(c)
    assert focused(page) == 'images-heading'


def test_events_without_what_the_page_needs_are_ignored(services, pages, tmp_path):
    service = services(tmp_path / 'images').start()
    image = upload(service, corpus.encode(corpus.pattern((320, 240)), 'PNG'))
    del image['delete_token']
    held = []
    errors = []
    # NOTE: The listing was read before the upload; the stream tells of it,
    #   after events a relay passed on without what the page needs.
    routes = [
        ('**/events', lambda route: held.append(route)),
        (LISTING, lambda route: route.fulfill(json=[])),
    ]
    page = pages(service, DESKTOP, routes=routes, live=False)
    page.on('pageerror', lambda error: errors.append(error))
    until(page, lambda: held)
    answer_stream(
        held[0],
        ('image-created', '{}'),
        ('image-created', '{'),
        ('image-created', 'null'),
        ('image-created', json.dumps({**image, 'srcset': {}})),
        ('image-created', json.dumps({**image, 'width': '320'})),
        ('image-deleted', '{}'),
        ('image-deleted', 'null'),
        ('image-deleted', '{"id": 7}'),
        ('image-created', json.dumps(image)),
    )
    page.wait_for_selector(f'#grid li[data-id="{image["id"]}"]')
    assert tiles(page) == [image['id']]
    assert '/thumbnails/' in current_source(page)
    assert errors == []
