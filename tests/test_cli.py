"""The asgilook command: upload against a fake and a real service, and serve."""

import asyncio
import io
import json
import os
import pathlib
import re
import runpy
import signal
import socket
import subprocess
import sys
import threading

import httpx
import pytest

from asgilook import cli
from asgilook import serve

from . import corpus
from .fakes import FakeImageService
from .fakes import PNG_SIGNATURE
from .helpers import decode
from .helpers import deep_folder
from .servers import free_port
from .servers import Service
from .servers import wait_for

TOKEN = 'secret-token-never-printed'


@pytest.fixture
def folder(tmp_path):
    """Two good files (one in a subfolder), one bad, one skipped."""
    root = tmp_path / 'photos'
    (root / 'sub').mkdir(parents=True)
    (root / 'a.png').write_bytes(PNG_SIGNATURE + b'a')
    (root / 'sub' / 'b.png').write_bytes(PNG_SIGNATURE + b'bb')
    (root / 'fake.png').write_text('just text')
    (root / 'notes.txt').write_text('not an image')
    return root


def _run(argv, service=None):
    transport = httpx.MockTransport(service or FakeImageService())
    return cli.main([str(arg) for arg in argv], transport=transport)


def test_upload_reports_rejections_and_fails(folder, tmp_path, capsys):
    service = FakeImageService()
    summary = tmp_path / 'summary.json'
    assert _run(['upload', folder, '--json', summary], service) == 1

    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == 'Files to upload: 3 (28 bytes)'
    assert (
        f'{folder}/fake.png: 415 Unsupported image format — The upload is not an image.'
    ) in lines
    images = {image['id']: image for image in service.images.values()}
    assert len(images) == 2
    for image in images.values():
        assert f'stored http://127.0.0.1:8000{image["image"]}' in '\n'.join(lines)
    assert lines[-1].startswith(
        'Stored 2, failed 1, skipped 1 (not images), retries 0; 19 bytes in '
    )

    result = json.loads(summary.read_text())
    assert result['url'] == 'http://127.0.0.1:8000'
    assert result['skipped'] == [f'{folder}/notes.txt']
    assert [entry['path'] for entry in result['files']] == [
        f'{folder}/a.png',
        f'{folder}/fake.png',
        f'{folder}/sub/b.png',
    ]
    a, fake, b = result['files']
    assert a['result'] == b['result'] == 'stored'
    assert {a['image']['id'], b['image']['id']} == set(images)
    assert a['url'] == f'http://127.0.0.1:8000{a["image"]["image"]}'
    assert (a['status'], a['attempts'], a['retried'], a['bytes']) == (201, 1, [], 9)
    assert fake == {
        'path': f'{folder}/fake.png',
        'bytes': 9,
        'result': 'failed',
        'status': 415,
        'attempts': 1,
        'retried': [],
        'error': {
            'title': 'Unsupported image format',
            'description': 'The upload is not an image.',
        },
    }
    totals = dict(result['totals'], seconds=None)
    assert totals == {
        'files': 3, 'stored': 2, 'failed': 1, 'skipped': 1, 'retries': 0,
        'bytes': 19, 'seconds': None,
    }  # fmt: skip


def test_all_stored_exits_0_and_json_to_stdout(folder, capsys):
    busy = httpx.Response(503, headers={'Retry-After': '1'})
    service = FakeImageService(busy)
    status = _run(
        ['upload', folder / 'a.png', folder / 'sub', '--json', '-', '--max-wait', 0],
        service,
    )
    assert status == 0
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert result['totals']['stored'] == 2
    assert result['totals']['retries'] == 1
    # NOTE: Two files go at once: either may be the one the 503 answered.
    assert sorted(entry['retried'] for entry in result['files']) == [[], ['503']]
    assert 'retries 1;' in err.splitlines()[-1]


def test_token_is_sent_and_never_shown(folder, tmp_path, capsys, monkeypatch):
    summary = tmp_path / 'summary.json'
    service = FakeImageService()
    _run(['upload', folder, '--token', TOKEN, '--json', summary], service)
    monkeypatch.setenv(cli.TOKEN_VARIABLE, TOKEN)
    _run(['upload', folder, '--json', '-'], service)
    # NOTE: Also asked for help, which lists the options.
    with pytest.raises(SystemExit):
        cli.main(['upload', '--help'])

    assert {request.headers['Authorization'] for request in service.requests} == {
        f'Bearer {TOKEN}'
    }
    out, err = capsys.readouterr()
    assert TOKEN not in out + err + summary.read_text()


def test_no_token_no_authorization(folder, monkeypatch):
    monkeypatch.delenv(cli.TOKEN_VARIABLE, raising=False)
    service = FakeImageService()
    _run(['upload', folder / 'a.png'], service)
    assert 'Authorization' not in service.requests[0].headers


def test_lines_for_odd_answers(folder, capsys):
    service = FakeImageService(
        httpx.Response(201, text='Created'),
        httpx.Response(500, json={'description': 'No title here.'}),
        httpx.Response(500, json={'title': 'No description'}),
    )
    names = ['a.png', 'sub/b.png', 'fake.png']
    # NOTE: One at a time, so that the answers go to the files in order.
    argv = ['upload', *(folder / name for name in names), '--concurrency', 1]
    assert _run(argv, service) == 1
    err = capsys.readouterr().err
    assert f'{folder}/a.png: stored\n' in err
    assert f'{folder}/sub/b.png: 500 Failed — No title here.\n' in err
    assert f'{folder}/fake.png: 500 No description\n' in err


def test_unreadable_files_and_folders_fail(tmp_path, capsys):
    deep_folder(tmp_path / 'deep')
    missing = tmp_path / 'missing.png'
    assert _run(['upload', tmp_path / 'deep', missing]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == 'Files to upload: 2 (0 bytes)'
    assert lines[1].endswith(': Unreadable — File name too long')
    assert lines[2] == f'{missing}: Unreadable — No such file or directory'
    assert lines[3].startswith('Stored 0, failed 2, skipped 0')


def test_nothing_to_upload(tmp_path, capsys):
    assert _run(['upload', tmp_path]) == 0
    assert capsys.readouterr().err.splitlines()[-1].startswith('Stored 0, failed 0')


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_on_a_terminal(folder, monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, 'stderr', terminal)
    assert _run(['upload', folder]) == 1
    shown = terminal.getvalue()
    assert '3/3 files' in shown
    assert '28/28 bytes' in shown
    assert f'{folder}/fake.png: 415 Unsupported image format' in shown
    assert 'Stored 2, failed 1, skipped 1 (not images)' in shown


@pytest.mark.parametrize(
    'argv',
    [
        ['upload'],
        ['upload', '.', '--url', 'ftp://example.com'],
        ['upload', '.', '--url', 'http://'],
        ['upload', '.', '--url', 'example.com'],
        ['upload', '.', '--url', 'http://[::1'],
        ['upload', '.', '--concurrency', '0'],
        ['upload', '.', '--concurrency', 'many'],
        ['upload', '.', '--retries', '-1'],
        ['upload', '.', '--max-wait', 'nan'],
        ['upload', '.', '--timeout', '0.5'],
        ['upload', '.', '--bogus'],
        ['upload', '.', '--json', '/nonexistent/summary.json'],
        ['serve', '--workers', '0'],
        ['serve', '--log-level', 'loud'],
        ['launch'],
        [],
    ],
)
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as raised:
        _run(argv)
    assert raised.value.code == 2
    assert 'usage: asgilook' in capsys.readouterr().err


def test_python_dash_m(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, 'argv', ['asgilook', 'upload', str(tmp_path)])
    with pytest.raises(SystemExit) as raised:
        runpy.run_module('asgilook', run_name='__main__')
    assert raised.value.code == 0
    assert 'Stored 0, failed 0' in capsys.readouterr().err


def test_metrics_dir_for_several_workers():
    environ = {}
    with serve.metrics_dir(2, environ) as path:
        assert environ == {serve.METRICS_DIR: path}
        assert os.path.isdir(path) and os.listdir(path) == []
    assert environ == {}
    assert not os.path.exists(path)


@pytest.mark.parametrize(
    'workers, environ, expected',
    [
        (1, {}, None),
        (2, {serve.METRICS_DIR: '/srv/metrics'}, '/srv/metrics'),
        (1, {serve.METRICS_DIR: '/srv/metrics'}, '/srv/metrics'),
    ],
)
def test_metrics_dir_left_alone(workers, environ, expected):
    before = dict(environ)
    with serve.metrics_dir(workers, environ) as path:
        assert path == expected
        assert environ == before
    assert environ == before


@pytest.mark.parametrize('options', [[], ['--reload'], ['--log-level', 'debug']])
def test_serve_passes_unknown_options_to_uvicorn(
    options, tmp_path, monkeypatch, capsys
):
    for name, value in _service_environ(tmp_path).items():
        monkeypatch.setenv(name, value)
    assert cli.main(['serve', *options, '--no-such-option']) == 2
    assert 'No such option' in capsys.readouterr().err


def _service_environ(tmp_path):
    return {
        'ASGI_LOOK_STORAGE_PATH': str(tmp_path / 'images'),
        'ASGI_LOOK_REDIS_URL': f'redis://127.0.0.1:{free_port()}',
    }


def test_serve_in_process(tmp_path, monkeypatch):
    for name, value in _service_environ(tmp_path).items():
        monkeypatch.setenv(name, value)
    # NOTE: A fresh app for this service; forgotten again afterwards.
    monkeypatch.delitem(sys.modules, 'asgilook.asgi', raising=False)
    port = free_port()
    answers = []

    def client():
        def answered():
            try:
                answers.append(httpx.get(f'http://127.0.0.1:{port}/images'))
            except httpx.TransportError:
                return False
            return True

        wait_for(answered, timeout=20, what='asgilook serve')

    thread = threading.Thread(target=client)
    thread.start()
    # NOTE: uvicorn's own options, passed through: it stops after one request,
    #   and waits at most a second for open ones then.
    argv = ['serve', '--port', str(port), '--log-level', 'warning']
    argv += ['--timeout-graceful-shutdown', '1']
    assert cli.main([*argv, '--limit-max-requests', '1']) == 0
    thread.join()
    assert answers[0].status_code == 200
    assert answers[0].json() == []
    monkeypatch.delitem(sys.modules, 'asgilook.asgi', raising=False)


def _console_script():
    script = pathlib.Path(sys.executable).with_name('asgilook')
    assert script.exists(), 'pip install -e . installs the asgilook command'
    return str(script)


def test_serve_several_workers_with_a_metrics_dir(tmp_path):
    temporary = tmp_path / 'tmp'
    temporary.mkdir()
    port = free_port()
    environ = dict(os.environ, TMPDIR=str(temporary), **_service_environ(tmp_path))
    environ.pop(serve.METRICS_DIR, None)
    process = subprocess.Popen(
        [_console_script(), 'serve', '--port', str(port), '--workers', '2'],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: _answers(port), timeout=30, what='asgilook serve')
        [metrics] = temporary.glob('asgilook-metrics-*')
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0].decode()
    assert process.returncode == 0, output
    assert 'Started parent process' in output
    assert not metrics.exists()
    # NOTE: One access log, the service's, not uvicorn's too.
    assert re.search(r'^GET /images 200 2B [\d.]+ms Bypass$', output, re.MULTILINE)
    assert '"GET /images HTTP/1.1" 200' not in output


def _answers(port):
    try:
        return httpx.get(f'http://127.0.0.1:{port}/images').status_code == 200
    except httpx.TransportError:
        return False


# NOTE: The real-server test from the issue.

GOOD = 50
FORMATS = ['PNG', 'JPEG', 'GIF', 'WEBP', 'BMP', 'TIFF']


def _photos(root):
    """50 small, distinct images (each of its own size) in a folder with a
    subfolder, two bad files and one that is no image; the sizes by path."""
    sizes = {}
    for number in range(GOOD):
        fmt = FORMATS[number % len(FORMATS)]
        size = (40 + number, 30 + number // 2)
        folder = root / 'sub' if number % 3 else root
        folder.mkdir(parents=True, exist_ok=True)
        # NOTE: One without an extension, taken for its bytes.
        name = 'sniffed' if number == 7 else f'{number:02}.{fmt.lower()}'
        (folder / name).write_bytes(corpus.encode(corpus.pattern(size), fmt))
        sizes[str(folder / name)] = size
    jpeg = corpus.encode(corpus.noise((64, 64)), 'JPEG')
    (root / 'truncated.jpg').write_bytes(jpeg[: len(jpeg) // 2])
    (root / 'sub' / 'text.png').write_text('a text file, named as a PNG')
    (root / 'README.txt').write_text('no image')
    return sizes


@pytest.fixture
def tight_service(tmp_path):
    """One upload place, and almost no wait for it: a crowd gets 503s."""
    service = Service(
        tmp_path / 'images',
        ASGI_LOOK_MAX_UPLOADS='1',
        ASGI_LOOK_QUEUE_TIMEOUT='0.01',
    ).start()
    yield service
    service.stop()


def test_upload_to_a_real_service(tight_service, tmp_path, capsys):
    root = tmp_path / 'photos'
    sizes = _photos(root)
    summary = tmp_path / 'summary.json'
    url = f'http://127.0.0.1:{tight_service.port}'
    # NOTE: Retries enough to outlast any run of 503s, soon after each.
    argv = ['upload', str(root), '--url', url, '--json', str(summary)]
    argv += ['--concurrency', '4', '--retries', '100', '--max-wait', '0.1']
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    result = json.loads(summary.read_text())

    listed = json.loads(tight_service.request('GET', '/images')[2])
    stored = [entry for entry in result['files'] if entry['result'] == 'stored']
    assert len(listed) == len(stored) == GOOD
    # NOTE: Each good file exactly once: its own id, listed, of its own size.
    assert {image['id'] for image in listed} == {
        entry['image']['id'] for entry in stored
    }
    assert sorted(entry['path'] for entry in stored) == sorted(sizes)
    for entry in stored:
        assert tuple(entry['image']['size']) == sizes[entry['path']]
        status, _, data = tight_service.request('GET', entry['image']['image'])
        assert status == 200
        assert decode(data).size == sizes[entry['path']]

    # NOTE: The tight setting turned some away, and they were retried.
    assert any('503' in entry['retried'] for entry in stored)
    assert result['totals']['retries'] >= 1
    assert result['skipped'] == [str(root / 'README.txt')]

    failed = {entry['path']: entry for entry in result['files'] if entry not in stored}
    assert sorted(failed) == [
        str(root / 'sub' / 'text.png'),
        str(root / 'truncated.jpg'),
    ]
    for path, entry in failed.items():
        # NOTE: The server's own reason, as it gives it for these bytes.
        status, _, body = tight_service.request(
            'POST', '/images', body=pathlib.Path(path).read_bytes()
        )
        problem = json.loads(body)
        assert entry['status'] == status
        assert entry['error'] == problem
        assert f'{path}: {status} {problem["title"]} — {problem["description"]}' in err
    assert {entry['status'] for entry in failed.values()} == {400, 415}
    assert err.splitlines()[-1].startswith('Stored 50, failed 2, skipped 1')


def test_the_console_script(tight_service, tmp_path):
    folder = tmp_path / 'more'
    folder.mkdir()
    (folder / 'good.png').write_bytes(corpus.encode(corpus.pattern((33, 22)), 'PNG'))
    (folder / 'bad.gif').write_text('not a GIF at all')
    url = f'http://127.0.0.1:{tight_service.port}'
    done = subprocess.run(
        [_console_script(), 'upload', str(folder), '--url', url, '--json', '-'],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    result = json.loads(done.stdout)
    assert result['totals']['stored'] == 1
    assert f'{folder}/bad.gif: 415 Unsupported image format — ' in done.stderr
    [image] = json.loads(tight_service.request('GET', '/images')[2])
    assert image['size'] == [33, 22]
    assert decode(tight_service.request('GET', image['image'])[2]).size == (33, 22)


# NOTE: What an adversarial review found; each test failed before its fix.


@pytest.mark.parametrize('around', [('', '\n'), ('', '\r\n'), (' \t', '\r')])
def test_whitespace_around_a_token_is_dropped(folder, monkeypatch, around):
    monkeypatch.setenv(cli.TOKEN_VARIABLE, TOKEN.join(around))
    service = FakeImageService()
    assert _run(['upload', folder / 'a.png'], service) == 0
    assert service.requests[0].headers['Authorization'] == f'Bearer {TOKEN}'


@pytest.mark.parametrize(
    'token', ['secret token', 'secret\ntoken', 'secret\x7ftoken', 'sécret-token']
)
@pytest.mark.parametrize('where', ['option', 'environment'])
def test_a_token_unfit_for_a_header_is_a_usage_error(
    folder, monkeypatch, capsys, token, where
):
    argv = ['upload', folder / 'a.png']
    if where == 'option':
        argv += ['--token', token]
    else:
        monkeypatch.setenv(cli.TOKEN_VARIABLE, token)
    service = FakeImageService()
    with pytest.raises(SystemExit) as raised:
        _run(argv, service)
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert 'usage: asgilook' in err
    assert 'printable ASCII' in err
    assert 'cret' not in err
    assert service.requests == []


def test_client_errors_never_show_what_was_sent(folder, tmp_path, capsys):
    summary = tmp_path / 'summary.json'
    # NOTE: h11's message for a header it refuses quotes the header.
    refused = httpx.LocalProtocolError(f"Illegal header value b'Bearer {TOKEN}'")
    service = FakeImageService(refused)
    argv = ['upload', folder / 'a.png', '--token', TOKEN, '--json', summary]
    assert _run(argv, service) == 1
    err = capsys.readouterr().err
    assert TOKEN not in err + summary.read_text()
    [entry] = json.loads(summary.read_text())['files']
    # NOTE: Not retried either: the same request would be refused again.
    assert (entry['attempts'], entry['retried'], entry['status']) == (1, [], None)
    assert entry['error']['title'] == 'LocalProtocolError'
    assert f'{folder}/a.png: LocalProtocolError — The request' in err


def test_pipes_and_devices_named_fail_unopened(folder, tmp_path):
    os.mkfifo(tmp_path / 'pipe.jpg')
    argv = [_console_script(), 'upload', tmp_path / 'pipe.jpg', '/dev/zero']
    argv += [folder / 'a.png', '--url', f'http://127.0.0.1:{free_port()}']
    # NOTE: A pipe once opened waited for a writer for ever; /dev/zero was
    #   read until memory ran out.
    done = subprocess.run(
        [*map(str, argv), '--json', '-', '--retries', '0'],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.splitlines()
    assert f'{tmp_path}/pipe.jpg: Unreadable — Not a regular file' in lines
    assert '/dev/zero: Unreadable — Not a regular file' in lines
    result = json.loads(done.stdout)
    assert [entry['path'] for entry in result['files']] == [
        f'{tmp_path}/pipe.jpg',
        '/dev/zero',
        f'{folder}/a.png',
    ]
    assert result['files'][2]['error'] == {
        'title': 'ConnectError',
        'description': 'Could not connect to the service (Connection refused).',
    }


def test_files_over_max_bytes_are_refused_unread(folder, tmp_path, capsys):
    big = folder / 'movie.jpg'
    # NOTE: Sparse: one byte over the default limit, and no disk space.
    with big.open('wb') as file:
        file.truncate(64 * 2**20 + 1)
    summary = tmp_path / 'summary.json'
    service = FakeImageService()
    assert _run(['upload', big, folder / 'a.png', '--json', summary], service) == 1
    assert len(service.requests) == 1
    assert service.requests[0].content.startswith(PNG_SIGNATURE)
    err = capsys.readouterr().err
    assert f'{big}: Too large — 67108865 bytes, more than --max-bytes' in err
    result = json.loads(summary.read_text())
    assert result['files'][0]['error'] == {
        'title': 'Too large',
        'description': '67108865 bytes, more than --max-bytes (67108864)',
    }
    assert result['totals']['stored'] == 1

    service = FakeImageService()
    assert _run(['upload', folder, '--max-bytes', 9], service) == 1
    assert [len(request.content) for request in service.requests] == [9, 9]
    assert f'{folder}/sub/b.png: Too large — 10 bytes' in capsys.readouterr().err


def test_max_bytes_in_help(capsys):
    with pytest.raises(SystemExit):
        cli.main(['upload', '--help'])
    out = ' '.join(capsys.readouterr().out.split())
    assert '--max-bytes N' in out
    assert '(default: 67108864, 64 MiB;' in out
    assert 'ASGI_LOOK_MAX_UPLOAD_BYTES' in out


@pytest.mark.parametrize('error', [MemoryError(), RuntimeError(f'Bearer {TOKEN}')])
def test_an_unexpected_error_fails_its_file_only(folder, capsys, error):
    service = FakeImageService(error)
    argv = ['upload', folder / 'a.png', folder / 'sub', '--json', '-']
    assert _run([*argv, '--concurrency', 1], service) == 1
    out, err = capsys.readouterr()
    result = json.loads(out)
    name = type(error).__name__
    assert result['files'][0]['error'] == {
        'title': name,
        'description': 'An unexpected error in asgilook upload.',
    }
    assert result['files'][1]['result'] == 'stored'
    assert f'{folder}/a.png: {name} — An unexpected error' in err
    assert TOKEN not in out + err
    assert 'Traceback' not in err


def test_an_interrupted_run_ends_with_the_totals_so_far(folder, tmp_path, capsys):
    service = FakeImageService()

    async def interrupted(request):
        if service.requests:
            # NOTE: As Ctrl-C does; the answer never comes.
            signal.raise_signal(signal.SIGINT)
            await asyncio.sleep(3600)
        return service(request)

    summary = tmp_path / 'summary.json'
    argv = ['upload', str(folder), '--concurrency', '1', '--json', str(summary)]
    assert cli.main(argv, transport=httpx.MockTransport(interrupted)) == 130
    lines = capsys.readouterr().err.splitlines()
    assert lines[-2] == 'Interrupted.'
    assert lines[-1].startswith('Stored 1, failed 0, skipped 1 (not images)')
    result = json.loads(summary.read_text())
    assert result['interrupted'] is True
    assert [entry['path'] for entry in result['files']] == [f'{folder}/a.png']


def test_ctrl_c_on_the_console_script(folder):
    # NOTE: A server that takes a connection and never answers.
    with socket.create_server(('127.0.0.1', 0)) as server:
        url = f'http://127.0.0.1:{server.getsockname()[1]}'
        process = subprocess.Popen(
            [_console_script(), 'upload', str(folder), '--url', url, '--json', '-'],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        server.settimeout(30)
        connection, _ = server.accept()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        connection.close()
    assert process.returncode == 130, err
    assert 'Traceback' not in err
    lines = err.splitlines()
    assert lines[0] == 'Files to upload: 3 (28 bytes)'
    assert lines[-2] == 'Interrupted.'
    assert lines[-1].startswith('Stored 0, failed 0, skipped 1 (not images)')
    result = json.loads(out)
    assert (result['interrupted'], result['files']) == (True, [])


@pytest.mark.parametrize(
    'image, url',
    [
        ({'image': '/images/1.jpeg'}, 'http://127.0.0.1:8000/images/1.jpeg'),
        ({'image': 'http://[::1'}, 'http://[::1'),
        ('Created', 'http://[::1'),
    ],
)
def test_stored_whatever_the_location(folder, capsys, image, url):
    stored = httpx.Response(201, json=image, headers={'Location': 'http://[::1'})
    argv = ['upload', folder / 'a.png', '--json', '-']
    assert _run(argv, FakeImageService(stored)) == 0
    out, err = capsys.readouterr()
    [entry] = json.loads(out)['files']
    assert (entry['result'], entry['url'], entry['image']) == ('stored', url, image)
    assert f'{folder}/a.png: stored {url}' in err


@pytest.mark.parametrize('workers', ['1', '2'])
def test_serve_refuses_a_bad_setting(tmp_path, monkeypatch, capsys, workers):
    for name, value in _service_environ(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv('ASGI_LOOK_MAX_PIXELS', 'abc')
    monkeypatch.delenv(serve.METRICS_DIR, raising=False)
    argv = ['serve', '--workers', workers, '--port', str(free_port())]
    monkeypatch.delitem(sys.modules, 'asgilook.asgi', raising=False)
    assert cli.main(argv) == 3
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith('asgilook: ASGI_LOOK_MAX_PIXELS must be a whole number')
    assert line.endswith("got 'abc'")
    assert serve.METRICS_DIR not in os.environ


def test_serve_refuses_a_missing_bucket_before_its_workers_start(
    tmp_path, monkeypatch, capsys, moto_server, aws_environment
):
    """Each worker would stop for it with status 3, and uvicorn's supervisor
    with 0: checked first, so that the service's status says so."""
    for name, value in _service_environ(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv('ASGI_LOOK_BLOBS_URL', moto_server.url('nowhere-to-be-found'))
    assert cli.main(['serve', '--workers', '2', '--port', str(free_port())]) == 3
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(
        "asgilook: ASGI_LOOK_BLOBS_URL names the bucket 'nowhere-to-be-found'"
    )


def test_serve_goes_on_to_uvicorn_once_the_bucket_is_there(
    tmp_path, monkeypatch, capsys, moto_server, s3_bucket
):
    for name, value in _service_environ(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv('ASGI_LOOK_BLOBS_URL', moto_server.url(s3_bucket))
    # NOTE: uvicorn is reached: it refuses an option of its own.
    assert cli.main(['serve', '--no-such-option']) == 2
    assert 'No such option' in capsys.readouterr().err


@pytest.mark.parametrize('given', [[], ['--timeout-graceful-shutdown', '1']])
def test_serve_stops_with_an_event_stream_open(tmp_path, given):
    port = free_port()
    process = subprocess.Popen(
        [_console_script(), 'serve', '--port', str(port), *given],
        env=dict(os.environ, **_service_environ(tmp_path)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def answers():
            try:
                return httpx.get(f'http://127.0.0.1:{port}/healthz').status_code == 200
            except httpx.TransportError:
                return False

        wait_for(answers, timeout=20, what='asgilook serve')
        with socket.create_connection(('127.0.0.1', port), timeout=10) as stream:
            stream.sendall(b'GET /events HTTP/1.1\r\nHost: x\r\n\r\n')
            assert stream.recv(100).startswith(b'HTTP/1.1 200')

            process.send_signal(signal.SIGTERM)
            # NOTE: Not a speed test: without a bound it would wait for ever.
            assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        process.kill()
        process.wait()
