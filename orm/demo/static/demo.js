// pg_avatar demo: drag and drop onto the upload form, and a crop square
// chosen on the picture itself. The square stays square and inside the
// picture, and is reported in the picture's natural pixels. Browsers show
// an image upright by its EXIF orientation, and naturalWidth/naturalHeight
// are of that upright image: the frame pg_avatar's crop is in too.
(() => {
  'use strict';

  const $ = (id) => document.getElementById(id);

  // The initial placeholder follows the name as it is typed.
  const placeholderName = $('placeholder-name');
  if (placeholderName) {
    const img = $('placeholder-img');
    const link = $('placeholder-url');
    const size = Number(img.getAttribute('width'));
    // The Libravatar route's answer: f=y forces the default, whatever the digest.
    const route = img.dataset.route;
    const at = (name, s) => `${route}?d=initials&name=${encodeURIComponent(name)}&f=y&s=${s}`;
    let timer = 0;
    placeholderName.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        const name = placeholderName.value.trim();
        if (!name) return;
        img.src = at(name, size);
        img.srcset = `${at(name, size)} 1x, ${at(name, 2 * size)} 2x`;
        link.href = link.textContent = at(name, size);
      }, 250);
    });
  }

  const form = $('upload-form');
  if (!form) return;
  const drop = $('drop');
  const input = $('picture');
  const cropper = $('cropper');
  const preview = $('preview');
  const square = $('square');
  const readout = $('crop-readout');
  const fields = { x: $('crop_x'), y: $('crop_y'), size: $('crop_size') };

  let crop = null; // {x, y, size} in natural pixels, or null: no crop
  let objectUrl = null;

  // Drag and drop: a file dropped on the zone becomes the input's file, so
  // the form posts it as if it had been chosen. Dropped elsewhere, the
  // browser would leave the page for the file.
  for (const type of ['dragenter', 'dragover']) {
    drop.addEventListener(type, (e) => {
      e.preventDefault();
      drop.classList.add('over');
    });
  }
  for (const type of ['dragleave', 'drop']) {
    drop.addEventListener(type, () => drop.classList.remove('over'));
  }
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    const files = e.dataTransfer && e.dataTransfer.files;
    if (!files || !files.length) return;
    input.files = files;
    input.dispatchEvent(new Event('change', { bubbles: true }));
  });
  window.addEventListener('dragover', (e) => e.preventDefault());
  window.addEventListener('drop', (e) => e.preventDefault());

  input.addEventListener('change', () => {
    reset();
    const file = input.files && input.files[0];
    if (!file) return;
    objectUrl = URL.createObjectURL(file);
    preview.onload = start;
    // Not a picture the browser can show: it is posted without a crop,
    // and pg_avatar says what is wrong with it.
    preview.onerror = () => {
      readout.textContent = `${file.name}: the browser cannot show this file; saving will say why.`;
    };
    preview.src = objectUrl;
  });

  function reset() {
    crop = null;
    for (const field of Object.values(fields)) field.value = '';
    cropper.hidden = true;
    readout.textContent = '';
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    objectUrl = null;
  }

  // The centre square to begin with: what pg_avatar stores without a crop.
  function start() {
    const w = preview.naturalWidth;
    const h = preview.naturalHeight;
    const size = Math.min(w, h);
    cropper.hidden = false;
    set({ x: Math.floor((w - size) / 2), y: Math.floor((h - size) / 2), size });
  }

  // CSS pixels per natural pixel, as the picture is laid out now.
  const scale = () => preview.getBoundingClientRect().width / preview.naturalWidth;

  // The smallest side, in natural pixels: 16 CSS pixels, or the picture.
  function smallest(limit) {
    return Math.min(limit, Math.max(1, Math.ceil(16 / scale())));
  }

  // Kept square, whole pixels, and inside the picture.
  function set(c) {
    const w = preview.naturalWidth;
    const h = preview.naturalHeight;
    const size = Math.round(Math.min(Math.max(c.size, smallest(Math.min(w, h))), w, h));
    crop = {
      x: Math.round(Math.min(Math.max(0, c.x), w - size)),
      y: Math.round(Math.min(Math.max(0, c.y), h - size)),
      size,
    };
    draw();
  }

  function draw() {
    if (!crop) return;
    const s = scale();
    square.style.left = `${crop.x * s}px`;
    square.style.top = `${crop.y * s}px`;
    square.style.width = square.style.height = `${crop.size * s}px`;
    fields.x.value = crop.x;
    fields.y.value = crop.y;
    fields.size.value = crop.size;
    const text = `Keeping ${crop.size} × ${crop.size} px at (${crop.x}, ${crop.y}) of ${preview.naturalWidth} × ${preview.naturalHeight}.`;
    readout.textContent = text;
    square.setAttribute('aria-valuetext', text);
  }

  // Dragging: the square moves; a corner resizes it about the opposite
  // corner, following whichever axis the pointer moved further along.
  let gesture = null;
  square.addEventListener('pointerdown', (e) => {
    if (!crop || e.button !== 0) return;
    e.preventDefault();
    square.focus();
    square.setPointerCapture(e.pointerId);
    gesture = {
      corner: e.target.dataset.corner || null,
      x0: e.clientX,
      y0: e.clientY,
      from: { ...crop },
    };
  });
  square.addEventListener('pointermove', (e) => {
    if (!gesture) return;
    const s = scale();
    const dx = (e.clientX - gesture.x0) / s;
    const dy = (e.clientY - gesture.y0) / s;
    const from = gesture.from;
    if (!gesture.corner) {
      set({ x: from.x + dx, y: from.y + dy, size: from.size });
      return;
    }
    const sx = gesture.corner.includes('e') ? 1 : -1;
    const sy = gesture.corner.includes('s') ? 1 : -1;
    // The corner that stays put, and the room there is from it.
    const ax = sx > 0 ? from.x : from.x + from.size;
    const ay = sy > 0 ? from.y : from.y + from.size;
    const room = Math.min(
      sx > 0 ? preview.naturalWidth - ax : ax,
      sy > 0 ? preview.naturalHeight - ay : ay,
    );
    const along = Math.abs(dx) > Math.abs(dy) ? sx * dx : sy * dy;
    const size = Math.round(Math.min(room, Math.max(smallest(room), from.size + along)));
    set({ x: sx > 0 ? ax : ax - size, y: sy > 0 ? ay : ay - size, size });
  });
  const end = (e) => {
    if (!gesture) return;
    gesture = null;
    if (square.hasPointerCapture(e.pointerId)) square.releasePointerCapture(e.pointerId);
  };
  square.addEventListener('pointerup', end);
  square.addEventListener('pointercancel', end);

  // The keyboard: arrows move by a pixel (ten with Shift), + and − resize
  // about the centre.
  square.addEventListener('keydown', (e) => {
    if (!crop) return;
    const step = e.shiftKey ? 10 : 1;
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (moves[e.key]) {
      const [dx, dy] = moves[e.key];
      set({ x: crop.x + dx, y: crop.y + dy, size: crop.size });
    } else if (e.key === '+' || e.key === '=' || e.key === '-' || e.key === '−') {
      const grow = e.key === '+' || e.key === '=' ? 2 * step : -2 * step;
      set({ x: crop.x - grow / 2, y: crop.y - grow / 2, size: crop.size + grow });
    } else {
      return;
    }
    e.preventDefault();
  });

  window.addEventListener('resize', draw);
})();
