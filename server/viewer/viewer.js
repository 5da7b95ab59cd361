// The city viewer: CesiumJS (served by this server under /cesium/, no Cesium ion, no internet)
// showing /tiles/city/tileset.json, the datasets of /api/datasets, and the properties of the
// feature under a click.
//
// Test hook (see tests/test_viewer_browser.py and docs/viewer.md):
//   window.cimViewer = { ready, viewer, tileset, datasets, errors, lastPick,
//                        pickAt(x, y), flyToDataset(name), flyToCity() }
//   ready: a Promise that resolves once the city tileset is loaded, the camera is on it and every
//          tile the view needs has loaded ({ empty, tilesLoaded, tiles }), or rejects when the
//          tileset cannot be loaded.
//   pickAt(x, y): picks at canvas CSS pixel (x, y); shows and returns the feature's properties
//          ({ id, class, ... }) or null when no feature is there.
//   upload(file): sends a file to /api/uploads (XMLHttpRequest: bytes-sent progress), then polls
//          its job (stage/percent) and reloads the city when it is done; resolves with the job.
//   lastJob: the last polled state of the page's upload job; reloaded: a Promise like ready,
//          for the latest reload of the city tileset; jobs: the list of /api/jobs.
// A token (?token=... once, then kept in this tab's sessionStorage, or the Token field) is sent as
// "Authorization: Bearer" on every API and tile request (CesiumJS Resource headers).
(function () {
  "use strict";

  const CITY_TILESET = "/tiles/city/tileset.json";
  const FIRST_KEYS = ["id", "class"];
  const SETTLE_FRAMES = 3;
  const LOAD_TIMEOUT_MS = 120000;
  const JOB_POLL_MS = 400;
  const TOKEN_KEY = "cimToken";
  const FINAL_STATES = ["done", "failed", "cancelled"];

  let settle;
  const api = {
    ready: new Promise((resolve, reject) => { settle = { resolve, reject }; }),
    viewer: undefined,
    tileset: undefined,
    datasets: [],
    errors: [],
    lastPick: null,
    tilesLoadedCount: 0,
    pickAt,
    flyToDataset,
    flyToCity,
    upload,
    reloadCity,
    lastJob: null,
    reloaded: null,
    jobs: [],
  };
  window.cimViewer = api;
  api.ready.catch(() => { /* reported in #status and api.errors */ });

  const $ = (id) => document.getElementById(id);
  let highlighted;

  // --- token ----------------------------------------------------------------------------------
  function takeTokenFromUrl() {
    const url = new URL(location.href);
    const token = url.searchParams.get("token");
    if (token !== null) {
      sessionStorage.setItem(TOKEN_KEY, token);
      url.searchParams.delete("token"); // keep it out of the history, bookmarks and Referer
      history.replaceState(null, "", url.pathname + url.search + url.hash);
    }
    const field = $("token");
    field.value = sessionStorage.getItem(TOKEN_KEY) || "";
    field.addEventListener("change", () => {
      sessionStorage.setItem(TOKEN_KEY, field.value.trim());
      refreshLists();
      reloadCity();
    });
  }

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

  function authHeaders(extra) {
    const headers = Object.assign({ Accept: "application/json" }, extra || {});
    if (token()) headers.Authorization = `Bearer ${token()}`;
    return headers;
  }

  async function getJson(url) {
    const response = await fetch(url, { headers: authHeaders() });
    if (!response.ok) {
      let message = `HTTP ${response.status}`;
      try { message = (await response.json()).message || message; } catch (e) { /* not JSON */ }
      throw new Error(message);
    }
    return response.json();
  }

  function setStatus(text, isError) {
    const el = $("status");
    el.textContent = text;
    el.classList.toggle("error", !!isError);
  }

  function createViewer() {
    Cesium.Ion.defaultAccessToken = ""; // no Cesium ion: everything comes from this server
    const viewer = new Cesium.Viewer("cesium", {
      baseLayer: false, baseLayerPicker: false, geocoder: false, homeButton: false, sceneModePicker: false,
      navigationHelpButton: false, animation: false, timeline: false, fullscreenButton: false,
      infoBox: false, selectionIndicator: false, vrButton: false, projectionPicker: false, scene3DOnly: true,
      terrainProvider: new Cesium.EllipsoidTerrainProvider(),
      contextOptions: { webgl: { preserveDrawingBuffer: true } },
    });
    const scene = viewer.scene;
    scene.globe.baseColor = Cesium.Color.fromCssColorString("#55606b");
    scene.skyBox.show = false;
    scene.backgroundColor = Cesium.Color.fromCssColorString("#0b0f14");
    viewer.clock.shouldAnimate = false;
    // a headlight: buildings are lit from the camera, whatever the time of day
    scene.light = new Cesium.DirectionalLight({ direction: Cesium.Cartesian3.clone(scene.camera.directionWC) });
    scene.preRender.addEventListener(() => {
      Cesium.Cartesian3.clone(scene.camera.directionWC, scene.light.direction);
    });
    new Cesium.ScreenSpaceEventHandler(scene.canvas).setInputAction((click) => {
      pickAt(click.position.x, click.position.y);
    }, Cesium.ScreenSpaceEventType.LEFT_CLICK);
    return viewer;
  }

  // --- datasets -------------------------------------------------------------------------------
  async function loadDatasets() {
    const list = $("dataset-list");
    try {
      api.datasets = (await getJson("/api/datasets")).datasets;
    } catch (e) {
      list.innerHTML = "";
      list.appendChild(item("Datasets could not be listed", String(e.message || e), true));
      return;
    }
    list.innerHTML = "";
    if (!api.datasets.length) list.appendChild(item("No dataset yet", "Upload a file above, or import files with 'cim import'.", true));
    for (const d of api.datasets) {
      const classes = Object.entries(d.class_counts || {}).sort((a, b) => b[1] - a[1]).slice(0, 3)
        .map(([k, v]) => `${v} ${k}`).join(", ");
      const published = d.tileset ? `version ${d.tileset_version}` : "not published";
      const li = item(d.name, `${d.feature_count} features${classes ? ` (${classes})` : ""} · ${published}`, !d.tileset || !d.bbox);
      li.dataset.dataset = d.name;
      li.title = d.sources && d.sources.length ? `sources: ${d.sources.join(", ")}` : "";
      if (d.tileset && d.bbox) li.addEventListener("click", () => flyToDataset(d.name));
      list.appendChild(li);
    }
  }

  function item(name, meta, inactive) {
    const li = document.createElement("li");
    if (inactive) li.classList.add("unpublished");
    const n = document.createElement("div");
    n.className = "name";
    n.textContent = name;
    const m = document.createElement("div");
    m.className = "meta";
    m.textContent = meta;
    li.append(n, m);
    return li;
  }

  function flyToDataset(name) {
    const d = api.datasets.find((x) => x.name === name);
    if (!d || !d.bbox) return Promise.resolve(false);
    const [w, s, e, n] = d.bbox;
    const [lo, hi] = d.height_range || [0, 0];
    const corners = [];
    for (const lon of [w, e]) for (const lat of [s, n]) for (const h of [lo, hi]) corners.push(lon, lat, h);
    const sphere = Cesium.BoundingSphere.fromPoints(Cesium.Cartesian3.fromDegreesArrayHeights(corners));
    return new Promise((resolve) => {
      api.viewer.camera.flyToBoundingSphere(sphere, {
        offset: new Cesium.HeadingPitchRange(0, Cesium.Math.toRadians(-35), Math.max(sphere.radius * 2.5, 150)),
        duration: 1.2, complete: () => resolve(true), cancel: () => resolve(false),
      });
    });
  }

  function flyToCity() {
    const t = api.tileset;
    if (!t || !t.root.children.length) return Promise.resolve(false);
    const range = t.boundingSphere.radius * 2.2;
    return api.viewer.zoomTo(t, new Cesium.HeadingPitchRange(0, Cesium.Math.toRadians(-40), range));
  }

  // --- picking --------------------------------------------------------------------------------
  function pickAt(x, y) {
    const picked = api.viewer.scene.pick(new Cesium.Cartesian2(x, y));
    setHighlight(undefined);
    if (!(picked instanceof Cesium.Cesium3DTileFeature)) {
      api.lastPick = null;
      showFeature(null);
      return null;
    }
    const properties = featureProperties(picked);
    const dataset = datasetOf(picked);
    setHighlight(picked);
    api.lastPick = { x, y, dataset, properties };
    showFeature(properties, dataset);
    return properties;
  }

  function featureProperties(feature) {
    const ids = feature.getPropertyIds();
    const ordered = FIRST_KEYS.filter((k) => ids.includes(k)).concat(ids.filter((k) => !FIRST_KEYS.includes(k)));
    const out = {};
    for (const id of ordered) out[id] = plain(feature.getProperty(id));
    return out;
  }

  function plain(value) {
    if (value === undefined || value === null) return null;
    if (typeof value === "bigint") return value.toString();
    if (typeof value === "object") {
      try { return JSON.parse(JSON.stringify(value, (k, v) => (typeof v === "bigint" ? v.toString() : v))); }
      catch (e) { return String(value); }
    }
    return value;
  }

  function datasetOf(feature) {
    try {
      const m = /\/tiles\/([^/]+)\//.exec(new URL(feature.content.url, location.href).pathname);
      return m ? decodeURIComponent(m[1]) : null;
    } catch (e) {
      return null;
    }
  }

  function setHighlight(feature) {
    if (highlighted) {
      try { highlighted.feature.color = highlighted.color; } catch (e) { /* its tile was unloaded */ }
      highlighted = undefined;
    }
    if (feature) {
      highlighted = { feature, color: Cesium.Color.clone(feature.color) };
      feature.color = Cesium.Color.fromCssColorString("#ffd24a");
    }
  }

  function showFeature(properties, dataset) {
    const panel = $("feature-panel");
    panel.innerHTML = "";
    if (!properties) {
      const p = document.createElement("p");
      p.className = "hint";
      p.textContent = "No feature there. Click a building or element to see its properties.";
      panel.appendChild(p);
      return;
    }
    const title = document.createElement("h3");
    title.textContent = properties.name || properties.id || "Feature";
    const where = document.createElement("p");
    where.className = "dataset";
    where.textContent = dataset ? `dataset ${dataset}` : "";
    const table = document.createElement("table");
    for (const [key, value] of Object.entries(properties)) {
      const row = table.insertRow();
      row.dataset.property = key;
      const th = document.createElement("th");
      th.textContent = key;
      const td = document.createElement("td");
      td.textContent = value === null ? "" : typeof value === "object" ? JSON.stringify(value) : String(value);
      row.append(th, td);
    }
    panel.append(title, where, table);
  }

  // --- loading --------------------------------------------------------------------------------
  function waitForTiles(viewer, tileset) {
    return new Promise((resolve) => {
      const t0 = performance.now();
      let stable = 0;
      const remove = viewer.scene.postRender.addEventListener(() => {
        const anything = api.tilesLoadedCount > 0 || api.errors.length > 0;
        stable = tileset.tilesLoaded && anything ? stable + 1 : 0;
        if (stable >= SETTLE_FRAMES) { remove(); resolve(true); }
        else if (performance.now() - t0 > LOAD_TIMEOUT_MS) { remove(); resolve(false); }
      });
    });
  }

  async function loadCity(datasets) {
    const viewer = api.viewer;
    if (api.tileset) {
      viewer.scene.primitives.remove(api.tileset); // destroys it
      api.tileset = undefined;
    }
    api.tilesLoadedCount = 0;
    api.errors = [];
    let tileset;
    try {
      const resource = new Cesium.Resource({ url: CITY_TILESET, headers: authHeaders() });
      tileset = await Cesium.Cesium3DTileset.fromUrl(resource, { maximumScreenSpaceError: 16 });
    } catch (e) {
      const message = `The city tileset could not be loaded: ${e && e.message ? e.message : e}`;
      setStatus(message, true);
      api.errors.push(message);
      await datasets;
      throw new Error(message);
    }
    api.tileset = tileset;
    tileset.tileLoad.addEventListener(() => { api.tilesLoadedCount++; });
    tileset.tileFailed.addEventListener((e) => {
      api.errors.push(`tile ${e.url}: ${e.message}`);
      setStatus(`A tile failed to load: ${e.url}`, true);
    });
    viewer.scene.primitives.add(tileset);
    await datasets;
    const published = tileset.root.children.length;
    if (!published) {
      setStatus("No dataset is published yet: the city is empty. Upload a file, or import and tile a dataset.");
      return { empty: true, tilesLoaded: true, tiles: 0 };
    }
    setStatus(`Loading ${published} published dataset${published > 1 ? "s" : ""}…`);
    await flyToCity();
    const loaded = await waitForTiles(viewer, tileset);
    if (!api.errors.length) {
      setStatus(loaded ? `${published} published dataset${published > 1 ? "s" : ""} shown. Click a feature for its properties.`
        : "Still loading tiles…");
    }
    updateFootprintLink();
    return { empty: false, tilesLoaded: loaded, tiles: api.tilesLoadedCount };
  }

  /** Load the city tileset again (a new dataset or version was published). */
  function reloadCity() {
    api.reloaded = loadCity(loadDatasets());
    api.reloaded.catch(() => { /* reported in #status and api.errors */ });
    return api.reloaded;
  }

  // --- upload and jobs ------------------------------------------------------------------------
  function uploadStatus(text, percent, isError) {
    $("upload-progress-box").hidden = false;
    const bar = $("upload-progress");
    if (percent === null) bar.removeAttribute("value"); else bar.value = percent;
    const el = $("upload-status");
    el.textContent = text;
    el.classList.toggle("error", !!isError);
  }

  function send(file) {
    const form = new FormData();
    for (const name of ["dataset", "crs", "origin", "rotation"]) {
      const value = $(`upload-${name}`).value.trim();
      if (value) form.append(name, value);
    }
    form.append("file", file, file.name);
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/uploads");
      for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
      xhr.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable) {
          const pct = (100 * e.loaded) / e.total;
          uploadStatus(`Sending ${file.name}: ${(e.loaded / 1048576).toFixed(1)} of ${(e.total / 1048576).toFixed(1)} MB`, pct);
        }
      });
      xhr.addEventListener("load", () => {
        let body = null;
        try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
        if (xhr.status === 202 && body) resolve(body);
        else reject(new Error(body && body.message ? body.message : `HTTP ${xhr.status}`));
      });
      xhr.addEventListener("error", () => reject(new Error("the upload was interrupted (network error)")));
      xhr.send(form);
    });
  }

  async function upload(file) {
    uploadStatus(`Sending ${file.name}…`, 0);
    let job;
    try {
      job = await send(file);
    } catch (e) {
      uploadStatus(`Upload refused: ${e.message}`, 0, true);
      api.lastJob = { state: "refused", error: { message: e.message } };
      return api.lastJob;
    }
    api.lastJob = job;
    refreshJobs();
    while (!FINAL_STATES.includes(job.state)) {
      const p = job.progress || {};
      uploadStatus(`Job ${job.state}: ${p.stage || ""} ${Math.round(p.percent || 0)} %`, job.state === "queued" ? null : p.percent || 0);
      await new Promise((r) => setTimeout(r, JOB_POLL_MS));
      try { job = await getJson(job.url); } catch (e) { uploadStatus(`Cannot follow the job: ${e.message}`, null, true); }
      api.lastJob = job;
    }
    refreshJobs();
    if (job.state === "done") {
      uploadStatus(`Done: dataset '${job.dataset}' (${job.report ? job.report.feature_count : "?"} features) is in the city.`, 100);
      await reloadCity();
      await flyToDataset(job.dataset);
    } else {
      uploadStatus(`Job ${job.state}: ${job.error ? job.error.message : ""}`, job.progress ? job.progress.percent : 0, true);
    }
    return job;
  }

  function setUpUpload() {
    const zone = $("drop-zone");
    const input = $("upload-file");
    input.addEventListener("change", () => { if (input.files.length) upload(input.files[0]).finally(() => { input.value = ""; }); });
    zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (e) => {
      e.preventDefault();
      zone.classList.remove("over");
      if (e.dataTransfer.files.length) upload(e.dataTransfer.files[0]);
    });
  }

  async function refreshJobs() {
    const list = $("job-list");
    try {
      api.jobs = (await getJson("/api/jobs?limit=20")).jobs;
    } catch (e) {
      list.innerHTML = "";
      list.appendChild(item("Jobs could not be listed", String(e.message || e), true));
      return;
    }
    list.innerHTML = "";
    if (!api.jobs.length) list.appendChild(item("No job yet", "Uploads appear here.", true));
    for (const job of api.jobs) {
      const li = document.createElement("li");
      li.dataset.job = job.id;
      li.dataset.state = job.state;
      const head = document.createElement("div");
      const state = document.createElement("span");
      state.className = `state state-${job.state}`;
      state.textContent = job.state;
      const p = job.progress || {};
      head.append(state, ` ${job.dataset} · ${job.source || ""}` +
        (FINAL_STATES.includes(job.state) ? "" : ` · ${p.stage || ""} ${Math.round(p.percent || 0)} %`));
      li.appendChild(head);
      const details = document.createElement("details");
      const summary = document.createElement("summary");
      summary.textContent = job.error ? job.error.message : job.report ? `${job.report.feature_count} features, report` : "progress";
      const pre = document.createElement("pre");
      const report = job.report ? { warnings: job.report.warnings, files: job.report.files } : null;
      pre.textContent = [...(p.messages || []), report ? JSON.stringify(report, null, 1) : ""].join("\n");
      details.append(summary, pre);
      li.appendChild(details);
      list.appendChild(li);
    }
  }

  function refreshLists() { loadDatasets(); refreshJobs(); }

  // --- footprint download for the current view -------------------------------------------------
  function updateFootprintLink() {
    const link = $("footprint-link");
    const rect = api.viewer.camera.computeViewRectangle();
    const params = new URLSearchParams({ format: "gpkg" });
    if (rect) {
      const deg = [rect.west, rect.south, rect.east, rect.north].map((r) => Cesium.Math.toDegrees(r).toFixed(6));
      params.set("bbox", deg.join(","));
    }
    if (token()) params.set("access_token", token()); // a link cannot send a header
    link.href = `/api/footprints?${params}`;
  }

  async function start() {
    takeTokenFromUrl();
    const viewer = createViewer();
    api.viewer = viewer;
    $("fly-city").addEventListener("click", () => flyToCity());
    viewer.camera.moveEnd.addEventListener(updateFootprintLink);
    setUpUpload();
    refreshJobs();
    updateFootprintLink();
    return loadCity(loadDatasets());
  }

  api.reloaded = start();
  api.reloaded.then(settle.resolve, (e) => {
    if (!api.errors.length) api.errors.push(String(e && e.stack ? e.stack : e));
    setStatus(`The viewer failed: ${e && e.message ? e.message : e}`, true);
    settle.reject(e);
  });
})();
