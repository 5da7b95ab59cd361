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
(function () {
  "use strict";

  const CITY_TILESET = "/tiles/city/tileset.json";
  const FIRST_KEYS = ["id", "class"];
  const SETTLE_FRAMES = 3;
  const LOAD_TIMEOUT_MS = 120000;

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
  };
  window.cimViewer = api;
  api.ready.catch(() => { /* reported in #status and api.errors */ });

  const $ = (id) => document.getElementById(id);
  let highlighted;

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
      const response = await fetch("/api/datasets", { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      api.datasets = (await response.json()).datasets;
    } catch (e) {
      list.innerHTML = "";
      list.appendChild(item("Datasets could not be listed", String(e.message || e), true));
      return;
    }
    list.innerHTML = "";
    if (!api.datasets.length) list.appendChild(item("No dataset yet", "Import files with 'cim import'.", true));
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

  async function start() {
    const viewer = createViewer();
    api.viewer = viewer;
    $("fly-city").addEventListener("click", () => flyToCity());
    const datasets = loadDatasets();
    let tileset;
    try {
      tileset = await Cesium.Cesium3DTileset.fromUrl(CITY_TILESET, { maximumScreenSpaceError: 16 });
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
      setStatus("No dataset is published yet: the city is empty. Import and tile a dataset, then reload.");
      return { empty: true, tilesLoaded: true, tiles: 0 };
    }
    setStatus(`Loading ${published} published dataset${published > 1 ? "s" : ""}…`);
    await flyToCity();
    const loaded = await waitForTiles(viewer, tileset);
    if (!api.errors.length) {
      setStatus(loaded ? `${published} published dataset${published > 1 ? "s" : ""} shown. Click a feature for its properties.`
        : "Still loading tiles…");
    }
    return { empty: false, tilesLoaded: loaded, tiles: api.tilesLoadedCount };
  }

  start().then(settle.resolve, (e) => {
    if (!api.errors.length) api.errors.push(String(e && e.stack ? e.stack : e));
    setStatus(`The viewer failed: ${e && e.message ? e.message : e}`, true);
    settle.reject(e);
  });
})();
