// asgilook gallery: upload, browse, open and delete images, live.
// Plain JavaScript, no build step. Every URL of an image comes from its JSON.
'use strict';

(() => {
  // NOTE: The width each tile takes, as the grid in gallery.css lays it out,
  //   so that the browser picks the smallest thumbnail that fills it.
  const SIZES =
    '(min-width: 1240px) 300px, (min-width: 900px) 33vw, (min-width: 600px) 50vw, 100vw';
  const VIEWER_SIZES = '(min-width: 1042px) 968px, 92vw';
  const FORMATS = [['avif', 'image/avif'], ['webp', 'image/webp']];
  const PAGE = 'images?limit=60';
  const PARALLEL_UPLOADS = 3;
  const TOKENS = 'asgilook.deleteTokens';
  // NOTE: Seconds before the event stream is opened again after a refusal,
  //   doubled on each refusal in a row.
  const RETRY_FIRST = 1;
  const RETRY_MAX = 30;
  // NOTE: Seconds the first listing waits at most for the event stream.
  const LIST_AFTER = 3;

  const $ = (id) => document.getElementById(id);
  const grid = $('grid');
  const viewer = $('viewer');
  const images = new Map();
  // NOTE: Ids deleted while this page is open: a listing page read before
  //   the delete was heard must not bring their tiles back.
  const deleted = new Set();
  // NOTE: The image the large view shows, apart from `images`: a resync
  //   empties that, and a later page may not be loaded again.
  let viewed = null;
  let next = null;
  // NOTE: Bumped when the listing is read again from its first page: a page
  //   of the listing before that is dropped.
  let generation = 0;
  let loadingMore = false;
  // NOTE: Whether the listing was read yet, and whether the status line says
  //   it could not be.
  let listed = false;
  let troubled = false;

  // Delete tokens of what this browser uploaded, by image id.
  function tokens() {
    try {
      return JSON.parse(localStorage.getItem(TOKENS)) || {};
    } catch {
      return {};
    }
  }

  function keepToken(id, token) {
    const all = tokens();
    if (token) all[id] = token; else delete all[id];
    try {
      localStorage.setItem(TOKENS, JSON.stringify(all));
    } catch {
      // NOTE: Storage off or full: the API token still deletes.
    }
  }

  function apiToken() {
    return $('token').value.trim();
  }

  function announce(text) {
    $('status').textContent = text;
  }

  // The service's own words for a refusal (a JSON problem), or the status.
  function problem(status, text) {
    try {
      const body = JSON.parse(text);
      return [body.title, body.description].filter(Boolean).join(': ');
    } catch {
      return `The service answered ${status}.`;
    }
  }

  function describe(image) {
    const when = new Date(image.modified).toLocaleString();
    return `Image of ${image.width} × ${image.height} pixels, uploaded ${when}`;
  }

  function picture(image, sizes) {
    const element = document.createElement('picture');
    for (const [format, type] of FORMATS) {
      if (image.srcset[format]) {
        const source = document.createElement('source');
        source.type = type;
        source.sizes = sizes;
        source.srcset = image.srcset[format];
        element.append(source);
      }
    }
    const img = document.createElement('img');
    // NOTE: loading and sizes before any URL, or the browser may start
    //   fetching the original at once.
    img.loading = 'lazy';
    img.decoding = 'async';
    img.sizes = sizes;
    img.srcset = image.srcset.jpeg;
    img.src = image.image;
    img.width = image.width;
    img.height = image.height;
    img.alt = describe(image);
    img.style.backgroundColor = image.color;
    if (image.placeholder) img.style.backgroundImage = `url("${image.placeholder}")`;
    element.append(img);
    return element;
  }

  function tileOf(id) {
    return grid.querySelector(`li[data-id="${CSS.escape(id)}"]`);
  }

  function newTile(image) {
    images.set(image.id, image);
    const item = document.createElement('li');
    item.dataset.id = image.id;
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'tile';
    button.append(picture(image, SIZES));
    button.addEventListener('click', () => open(image));
    item.append(button);
    $('empty').hidden = true;
    return item;
  }

  // The grid is in the listing's order (oldest first): the loaded pages,
  // then what arrived since (uploaded here, or heard live), which is newer
  // than anything listed and so belongs after the pages not loaded yet.
  function addTile(image) {
    if (images.has(image.id) || deleted.has(image.id)) return;
    const item = newTile(image);
    item.dataset.live = '';
    grid.append(item);
  }

  // An image of a page, after the pages before it; the tile of one that
  // arrived live moves there. Returns the tile, or null if it was listed.
  function listTile(image) {
    if (deleted.has(image.id)) return null;
    let item = tileOf(image.id);
    if (item && !('live' in item.dataset)) return null;
    if (item) delete item.dataset.live;
    else item = newTile(image);
    grid.insertBefore(item, grid.querySelector('li[data-live]'));
    return item;
  }

  // NOTE: Keyboard focus on the tile that goes, or in the large view of its
  //   image, would fall to the body: it goes to the next tile, else the
  //   previous one, else the heading.
  function removeTile(id) {
    deleted.add(id);
    images.delete(id);
    const item = tileOf(id);
    const viewing = viewer.open && viewed?.id === id;
    const focused = viewing || Boolean(item?.contains(document.activeElement));
    const neighbour = item?.nextElementSibling || item?.previousElementSibling;
    item?.remove();
    if (viewing) viewer.close();
    if (focused) (neighbour?.querySelector('button') || $('images-heading')).focus();
    $('empty').hidden = images.size > 0;
  }

  function nextLink(header) {
    const match = /<([^>]*)>\s*;\s*rel="?next"?/.exec(header || '');
    return match ? match[1] : null;
  }

  // Adds a page of the listing; returns the tiles it placed, in order.
  async function loadPage(url) {
    const started = generation;
    let response;
    let body;
    try {
      response = await fetch(url, { headers: { Accept: 'application/json' } });
      body = response.ok ? await response.json() : await response.text();
    } catch {
      announce('The service cannot be reached; showing what was loaded.');
      troubled = true;
      return [];
    }
    if (!response.ok) {
      announce(problem(response.status, body));
      troubled = true;
      return [];
    }
    if (troubled) announce('');
    troubled = false;
    if (started !== generation) return [];
    const placed = body.map(listTile).filter(Boolean);
    next = nextLink(response.headers.get('Link'));
    $('more').hidden = !next;
    $('empty').hidden = images.size > 0;
    return placed;
  }

  // NOTE: The first listing is read once the event stream is open, so that
  //   an image stored meanwhile is in one or the other (or both: tiles are
  //   by id), never in neither; a refused or slow stream does not hold the
  //   page up for long.
  function listOnce() {
    if (listed) return;
    listed = true;
    loadPage(PAGE);
  }

  function reload() {
    generation += 1;
    images.clear();
    grid.replaceChildren();
    next = null;
    $('more').hidden = true;
    return loadPage(PAGE);
  }

  async function loadMore() {
    if (!next || loadingMore) return;
    const more = $('more');
    loadingMore = true;
    const placed = await loadPage(next).finally(() => {
      loadingMore = false;
    });
    // NOTE: The button hides after the last page, and focus would fall to
    //   the body: keyboard users go on from the first tile the page brought.
    //   Unless they went elsewhere meanwhile.
    const focus = document.activeElement;
    if (focus !== more && focus !== document.body) return;
    if (placed.length) placed[0].querySelector('button').focus();
    else if (more.hidden) $('images-heading').focus();
  }

  function open(image) {
    viewed = image;
    $('viewer-title').textContent = `Image of ${image.width} × ${image.height}`;
    $('viewer-picture').replaceChildren(picture(image, VIEWER_SIZES));
    $('viewer-original').href = image.image;
    $('viewer-error').textContent = '';
    viewer.showModal();
  }

  async function remove() {
    const image = viewed;
    if (!image) return;
    const token = tokens()[image.id] || apiToken();
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    let response;
    try {
      response = await fetch(image.image, { method: 'DELETE', headers });
    } catch {
      $('viewer-error').textContent = 'The service cannot be reached; try again.';
      return;
    }
    if (response.status === 204 || response.status === 404) {
      keepToken(image.id, null);
      announce('Image deleted.');
      removeTile(image.id);
    } else {
      $('viewer-error').textContent = problem(response.status, await response.text());
    }
  }

  // A row's failure: no progress bar (a full one reads as done), a word
  // where it was, and the reason below.
  function failed(row, bar, outcome, reason) {
    const state = document.createElement('span');
    state.className = 'state';
    state.textContent = 'Failed';
    bar.replaceWith(state);
    row.className = 'failed';
    outcome.textContent = reason;
  }

  // One file: a row with a progress bar, then the outcome in the service's words.
  function upload(file) {
    const row = document.createElement('li');
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = file.name;
    const bar = document.createElement('progress');
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute('aria-label', `Uploading ${file.name}`);
    const outcome = document.createElement('span');
    outcome.className = 'outcome';
    outcome.setAttribute('role', 'status');
    row.append(name, bar, outcome);
    $('uploads').prepend(row);

    return new Promise((resolve) => {
      const request = new XMLHttpRequest();
      const form = new FormData();
      form.append('image', file, file.name);
      request.open('POST', 'images');
      const token = apiToken();
      if (token) request.setRequestHeader('Authorization', `Bearer ${token}`);
      request.upload.addEventListener('progress', (event) => {
        if (event.lengthComputable) bar.value = (100 * event.loaded) / event.total;
      });
      request.addEventListener('load', () => {
        if (request.status === 201) {
          const image = JSON.parse(request.responseText);
          keepToken(image.id, image.delete_token);
          delete image.delete_token;
          addTile(image);
          bar.value = 100;
          row.className = 'stored';
          outcome.textContent = 'Stored.';
        } else {
          failed(row, bar, outcome, problem(request.status, request.responseText));
        }
        resolve();
      });
      request.addEventListener('error', () => {
        failed(row, bar, outcome, 'The upload did not reach the service; try again.');
        resolve();
      });
      request.send(form);
    });
  }

  async function uploadAll(files) {
    const waiting = Array.from(files);
    const worker = async () => {
      while (waiting.length) await upload(waiting.shift());
    };
    await Promise.all(Array.from({ length: PARALLEL_UPLOADS }, worker));
  }

  // NOTE: A relay passes on what it was given: an event without what the
  //   page needs is ignored rather than thrown on.
  function isImage(data) {
    return (
      typeof data?.id === 'string' &&
      typeof data.image === 'string' &&
      typeof data.srcset?.jpeg === 'string' &&
      Number.isFinite(data.width) &&
      Number.isFinite(data.height)
    );
  }

  function isDeletion(data) {
    return typeof data?.id === 'string';
  }

  // The event's JSON, or undefined if it is not JSON.
  function parse(text) {
    try {
      return JSON.parse(text);
    } catch {
      return undefined;
    }
  }

  function listen() {
    const live = $('live');
    let delay = RETRY_FIRST;

    function connect() {
      const source = new EventSource('events');
      // NOTE: Whether a reconnect of this stream can say where it left off.
      let heard = false;
      const on = (name, valid, handle) => source.addEventListener(name, (event) => {
        heard = heard || Boolean(event.lastEventId);
        const data = parse(event.data);
        if (valid(data)) handle(data);
      });
      source.addEventListener('open', () => {
        delay = RETRY_FIRST;
        live.dataset.state = 'live';
        live.textContent = 'Live';
        // NOTE: A stream without a Last-Event-ID starts from now: what
        //   happened while there was none is only in the listing.
        if (!listed) listOnce();
        else if (!heard) reload();
      });
      source.addEventListener('error', () => {
        live.dataset.state = 'offline';
        if (source.readyState !== EventSource.CLOSED) {
          // NOTE: The browser reconnects by itself, with the last event's id.
          live.textContent = 'Reconnecting…';
          return;
        }
        // NOTE: An answer other than a 200 event stream (a 503 while the
        //   service restarts behind a proxy) closes it for good: the
        //   browser never tries again, so we do, with a new stream.
        listOnce();
        live.textContent = `Offline; trying again in ${delay} s…`;
        setTimeout(connect, delay * 1000);
        delay = Math.min(delay * 2, RETRY_MAX);
      });
      on('image-created', isImage, addTile);
      on('image-deleted', isDeletion, (data) => removeTile(data.id));
      // NOTE: Events were missed (the service restarted, or we were away long).
      on('resync', () => true, () => reload());
    }

    connect();
  }

  function setUpDrop() {
    const drop = $('drop');
    // NOTE: A file dropped beside the zone must not replace the page.
    for (const type of ['dragover', 'drop']) {
      document.addEventListener(type, (event) => event.preventDefault());
    }
    drop.addEventListener('dragover', () => drop.classList.add('dragging'));
    drop.addEventListener('dragleave', () => drop.classList.remove('dragging'));
    drop.addEventListener('drop', (event) => {
      drop.classList.remove('dragging');
      uploadAll(event.dataTransfer.files);
    });
  }

  $('files').addEventListener('change', (event) => {
    uploadAll(event.target.files).then(() => {
      event.target.value = '';
    });
  });
  $('token-form').addEventListener('submit', (event) => event.preventDefault());
  $('more').addEventListener('click', loadMore);
  $('delete').addEventListener('click', remove);
  $('close').addEventListener('click', () => viewer.close());
  viewer.addEventListener('close', () => {
    const was = viewed;
    viewed = null;
    // NOTE: The dialog gives focus back to the tile that opened it; after a
    //   reload (resync) that tile is gone, and focus would stay in the
    //   closed dialog, then fall to the body.
    const lost = document.activeElement;
    if (was && (lost === document.body || viewer.contains(lost))) {
      (tileOf(was.id)?.querySelector('button') || $('images-heading')).focus();
    }
  });
  setUpDrop();
  listen();
  setTimeout(listOnce, LIST_AFTER * 1000);
})();
