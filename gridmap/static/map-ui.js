/* The map pages: draws the choropleth, boundaries, heatmap, issue markers and coverage from
 * the page's config (#map-config) and the /api/v1/maps endpoints, and keeps the filters in the URL.
 *
 * Safety: every text that comes from data (names, descriptions, addresses) is put into the page
 * with textContent, never as HTML; popups and tooltips are DOM elements built here.
 */
(function () {
  "use strict";

  var configElement = document.getElementById("map-config");
  if (!configElement || !window.L) {
    return;
  }
  var config = JSON.parse(configElement.textContent);
  var map = window[config.names.map];
  var labels = config.labels;
  var state = copyState(config.state);
  var data = config.data;
  var renderer = config.renderer === "canvas" ? L.canvas({ padding: 0.3 }) : L.svg({ padding: 0.3 });
  var cellLayers = {};
  var names = Object.assign({}, config.area_names);
  var heatInfo = config.heat;
  var markerNote = "";
  var coverageNote = "";
  var coverageLegend = null;
  var selectedCode = null;

  // --- small helpers -------------------------------------------------------------------------

  function copyState(s) {
    return {
      area: s.area || "", metric: s.metric || "total", category: s.category || "",
      status: (s.status || []).slice(), source: (s.source || []).slice(), from: s.from || "", to: s.to || ""
    };
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function format(template, values) {
    return template.replace(/\{(\w+)\}/g, function (match, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? values[key] : match;
    });
  }

  function formatNumber(value, decimals) {
    if (value === null || value === undefined) { return "—"; }
    return Number(value).toLocaleString(undefined, { maximumFractionDigits: decimals === undefined ? 1 : decimals });
  }

  function debounce(fn, ms) {
    var timer = null;
    return function () {
      clearTimeout(timer);
      timer = setTimeout(fn, ms);
    };
  }

  function setStatus(message) {
    var box = document.getElementById("map-status");
    if (box) { box.textContent = message || ""; }
  }

  function fetchJSON(url) {
    return fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" }).then(function (response) {
      if (!response.ok) {
        return response.json().then(function (body) {
          throw new Error((body && body.error && body.error.message) || response.statusText);
        });
      }
      return response.json();
    });
  }

  function filterParams(s, extra) {
    var params = new URLSearchParams();
    if (s.area) { params.set("area", s.area); }
    if (s.metric && s.metric !== config.defaults.metric) { params.set("metric", s.metric); }
    if (s.category) { params.set("category", s.category); }
    if (s.status.length) { params.set("status", s.status.join(",")); }
    if (s.source.length) { params.set("source", s.source.join(",")); }
    if (s.from) { params.set("from", s.from); }
    if (s.to) { params.set("to", s.to); }
    Object.keys(extra || {}).forEach(function (key) { params.set(key, extra[key]); });
    return params;
  }

  function pageUrl(s) {
    var query = filterParams(s).toString();
    return config.urls.page + (query ? "?" + query : "");
  }

  function overviewUrl(area) {
    var s = copyState(state);
    s.area = area;
    if (config.mode !== "overview") { s.metric = "total"; }
    var query = filterParams(s).toString();
    return config.urls.overview + (query ? "?" + query : "");
  }

  // --- geometry ------------------------------------------------------------------------------

  function decode(feature, precision) {
    var scale = Math.pow(10, precision || 5);
    return feature.g.map(function (polygon) {
      return polygon.map(function (ring) {
        var x = ring[0];
        var y = ring[1];
        var points = [[y / scale, x / scale]];
        for (var i = 2; i < ring.length; i += 2) {
          x += ring[i];
          y += ring[i + 1];
          points.push([y / scale, x / scale]);
        }
        return points;
      });
    });
  }

  function loadLayer(name) {
    var entry = config.layers[name];
    if (entry.features) {
      return Promise.resolve({ features: entry.features, precision: 5 });
    }
    return fetchJSON(entry.url);
  }

  // --- colours -------------------------------------------------------------------------------

  var COUNTS = ["total", "open", "overdue", "closed"];

  function valueOf(code) {
    if (!data) { return undefined; }
    var row = data.features[code];
    if (!row) { return data["default"]; }
    // Count metrics are one of the four figures; shares and rates come as a fifth item.
    return row.length > 4 ? row[4] : row[COUNTS.indexOf(data.metric)];
  }

  function figuresOf(code) {
    var row = data && data.features[code];
    return row ? row.slice(0, 4) : [0, 0, 0, 0];
  }

  function colourFor(value) {
    var legend = data.legend;
    if (value === null || value === undefined) { return legend.none ? legend.none.colour : "#d9d9d9"; }
    if (value === 0 && legend.zero) { return legend.zero.colour; }
    for (var i = 0; i < legend.classes.length; i++) {
      if (value <= legend.classes[i].upper + 1e-9) { return legend.classes[i].colour; }
    }
    return legend.classes[legend.classes.length - 1].colour;
  }

  function styleFor(code) {
    if (!data) {
      return { fillColor: "#eeeeee", fillOpacity: 0.3, color: "#888888", weight: 0.4 };
    }
    var value = valueOf(code);
    var empty = value === null || value === undefined || (value === 0 && data.legend.zero);
    return { fillColor: colourFor(value), fillOpacity: empty ? 0.25 : 0.72, color: "#777777", weight: 0.4 };
  }

  // --- choropleth ----------------------------------------------------------------------------

  var choropleth = L.featureGroup();

  function metricText(code) {
    var value = valueOf(code);
    if (value === null || value === undefined) { return labels.no_value; }
    return formatNumber(value) + (state.metric === "closed_share" ? " %" : "");
  }

  function tooltipFor(feature) {
    var box = el("div", "cell-tooltip");
    box.appendChild(el("div", "popup-title", feature.name));
    box.appendChild(el("div", "popup-code", feature.code));
    box.appendChild(el("div", null, config.metric_labels[state.metric] + ": " + metricText(feature.code)));
    return box;
  }

  function figuresTable(code) {
    var f = figuresOf(code);
    var table = el("table", "figures");
    var rows = [
      [labels.total, formatNumber(f[0], 0)], [labels.open, formatNumber(f[1], 0)],
      [labels.overdue, formatNumber(f[2], 0)], [labels.closed, formatNumber(f[3], 0)],
      [labels.closed_share, f[0] ? formatNumber(f[3] / f[0] * 100) + " %" : "—"]
    ];
    if (config.households && state.metric === "per_100_households") {
      rows.push([labels.per_100_households, metricText(code)]);
    }
    rows.forEach(function (row) {
      var tr = el("tr");
      tr.appendChild(el("th", null, row[0]));
      tr.appendChild(el("td", null, row[1]));
      table.appendChild(tr);
    });
    return table;
  }

  function drillLinks(code) {
    var box = el("div", "popup-links");
    var scope = config.scope;
    var current = scope.length === 1 ? scope[0].length : 0;
    [6, 9, 12, 15].forEach(function (length) {
      if (length <= current || length > code.length) { return; }
      var prefix = code.slice(0, length);
      var link = el("a", null, (length === 15 ? labels.show_cell : labels.drill_into + " " + (names[prefix] || prefix)) + " ›");
      link.href = overviewUrl(prefix);
      link.setAttribute("data-area", prefix);
      box.appendChild(link);
    });
    return box;
  }

  function figuresBox(feature) {
    var box = el("div", "cell-figures");
    box.appendChild(el("div", "popup-title", feature.name));
    box.appendChild(el("div", "popup-code", labels.code + " " + feature.code));
    box.appendChild(figuresTable(feature.code));
    box.appendChild(drillLinks(feature.code));
    return box;
  }

  function showSelected() {
    var panel = document.getElementById("selected");
    var feature = cellLayers[selectedCode] ? cellLayers[selectedCode].feature : tileFeatures[selectedCode];
    if (!panel || !selectedCode || !feature) { return; }
    panel.textContent = "";
    panel.appendChild(el("h2", null, labels.selected_cell));
    panel.appendChild(figuresBox(feature));
    panel.hidden = false;
  }

  function buildChoropleth(payload) {
    var scale = Math.pow(10, payload.precision || 5);
    payload.features.forEach(function (feature) {
      names[feature.code] = feature.name;
      var first = feature.g[0][0];  // p is the step from the first vertex to a point inside
      heatPoints[feature.code] = [(first[1] + feature.p[1]) / scale, (first[0] + feature.p[0]) / scale];
      var layer = L.polygon(decode(feature, payload.precision), Object.assign({ renderer: renderer }, styleFor(feature.code)));
      layer.feature = feature;
      layer.bindTooltip(function () { return tooltipFor(feature); }, { sticky: false, direction: "top" });
      layer.bindPopup(function () { return figuresBox(feature); }, { maxWidth: 280 });
      layer.on("click", function () {
        layer.closeTooltip();
        selectedCode = feature.code;
        showSelected();
      });
      layer.on("mouseover", function () { layer.setStyle({ weight: 2, color: "#000000" }); });
      layer.on("mouseout", function () { layer.setStyle(styleFor(feature.code)); });
      choropleth.addLayer(layer);
      cellLayers[feature.code] = layer;
    });
  }

  function restyle() {
    Object.keys(cellLayers).forEach(function (code) { cellLayers[code].setStyle(styleFor(code)); });
    if (tileLayer) {
      Object.keys(tileLayer._vectorTiles).forEach(function (key) {
        var tile = tileLayer._vectorTiles[key];
        Object.keys(tile._features || {}).forEach(function (code) {
          tileLayer._updateStyles(tile._features[code].feature, tile, tileStyle(code));
        });
      });
    }
  }

  // --- choropleth from vector tiles (large cell layers) ----------------------------------------
  // Leaflet.VectorGrid draws the cells of /api/v1/maps/tiles/…; each feature carries its code and
  // name, the figures are joined here by code, as for the polygons above.

  var tileLayer = null;
  var tileFeatures = {};  // code -> {code, name} of tile features clicked
  var tileStats = { loaded: 0, idle: false };

  function tileStyle(code) {
    var style = styleFor(code);
    return { fill: true, fillColor: style.fillColor, fillOpacity: style.fillOpacity, stroke: true, color: style.color,
             weight: style.weight };
  }

  function buildTileChoropleth(entry) {
    // Leaflet.VectorGrid 1.3 stops a click on a feature with L.DomEvent.fakeStop, which Leaflet 1.8 removed.
    if (!L.DomEvent.fakeStop) { L.DomEvent.fakeStop = L.DomEvent.stopPropagation; }
    // The tiles lie in the tile pane, below the overlay pane whose canvases (boundaries, heatmap)
    // would take every click: those draw nothing clickable here, so clicks go through them.
    map.getPane("overlayPane").style.pointerEvents = "none";
    var styles = {};
    styles[entry.level] = function (properties) { return tileStyle(properties.code); };
    tileLayer = L.vectorGrid.protobuf(entry.tiles, {
      rendererFactory: L.canvas.tile, vectorTileLayerStyles: styles, interactive: true,
      getFeatureId: function (feature) { return feature.properties.code; }
    });
    tileLayer.on("loading", function () { tileStats.idle = false; });
    tileLayer.on("tileload", function () { tileStats.loaded++; });
    tileLayer.on("load", function () { tileStats.idle = true; });
    tileLayer.on("click", function (event) {
      var properties = event.layer.properties;
      var feature = { code: String(properties.code), name: String(properties.name) };
      names[feature.code] = feature.name;
      tileFeatures[feature.code] = feature;
      selectedCode = feature.code;
      showSelected();
      L.popup({ maxWidth: 280 }).setLatLng(event.latlng).setContent(figuresBox(feature)).openOn(map);
    });
    choropleth.addLayer(tileLayer);
  }

  function tileCodes() {
    var codes = {};
    if (tileLayer) {
      Object.keys(tileLayer._vectorTiles).forEach(function (key) {
        Object.keys(tileLayer._vectorTiles[key]._features || {}).forEach(function (code) { codes[code] = true; });
      });
    }
    return Object.keys(codes);
  }

  // --- boundaries ----------------------------------------------------------------------------

  function boundaries(payload, style) {
    var group = L.featureGroup();
    var scope = config.scope;
    payload.features.forEach(function (feature) {
      names[feature.code] = feature.name;
      var current = scope.indexOf(feature.code) >= 0;
      group.addLayer(L.polygon(decode(feature, payload.precision), Object.assign({
        renderer: renderer, fill: false, interactive: false
      }, style, current ? { weight: style.weight + 1.5, color: "#d7301f" } : {})));
    });
    return group;
  }

  var communities = L.featureGroup();
  var streets = L.featureGroup();

  // --- heatmap -------------------------------------------------------------------------------

  var heat = config.names.heat ? window[config.names.heat] : L.heatLayer([], config.heat.options);

  var heatPoints = {};  // code -> [lat, lng] of the point inside each drawn area

  function setHeat(result) {
    heatInfo = result;
    if (result.mode !== "areas") {
      heat.setLatLngs(result.points);
      return;
    }
    // Server-aggregated: one point per area, weighted by the count the heat metric takes. The
    // heatmap scales to its heaviest spot, so weights are capped at their 95th percentile: a few
    // extreme cells would otherwise leave every other one nearly transparent.
    var points = [];
    Object.keys(data.features).forEach(function (code) {
      var weight = data.features[code][result.index];
      if (weight > 0 && heatPoints[code]) { points.push([heatPoints[code][0], heatPoints[code][1], weight]); }
    });
    var weights = points.map(function (p) { return p[2]; }).sort(function (a, b) { return a - b; });
    var cap = weights.length ? weights[Math.floor((weights.length - 1) * 0.95)] : 1;
    points.forEach(function (p) { p[2] = Math.min(p[2], cap); });
    heat.setLatLngs(points);
  }

  // --- markers -------------------------------------------------------------------------------

  var cluster = window[config.names.cluster];
  if (cluster && !config.urls.issues) {  // the role may not list single issues: no markers at all
    if (map.hasLayer(cluster)) { map.removeLayer(cluster); }
    cluster = null;
  }
  var markerSequence = 0;

  function issuePopup(issue) {
    var box = el("div", "issue-popup");
    var title = el("div", "popup-title", config.categories[issue.category] || issue.category);
    if (issue.overdue) {
      title.appendChild(document.createTextNode(" "));
      title.appendChild(el("span", "badge", labels.is_overdue));
    }
    box.appendChild(title);
    var list = el("dl");
    [
      [labels.status, config.statuses[issue.status] || issue.status],
      [labels.deadline, issue.deadline || "—"],
      [labels.reported_at, issue.reported_at],
      [labels.source, config.sources[issue.source] || issue.source],
      [labels.address, issue.address],
      [labels.description, issue.description]
    ].forEach(function (row) {
      if (row[1] === null || row[1] === undefined || row[1] === "") { return; }
      list.appendChild(el("dt", null, row[0]));
      list.appendChild(el("dd", null, row[1]));
    });
    box.appendChild(list);
    var link = el("a", null, labels.open_issue + " #" + issue.id);
    link.href = config.urls.issue.replace("{id}", encodeURIComponent(issue.id));
    box.appendChild(link);
    return box;
  }

  function markerFor(issue) {
    var icon = L.divIcon({ className: "issue-marker" + (issue.overdue ? " is-overdue" : ""), iconSize: [12, 12] });
    var marker = L.marker([issue.lat, issue.lon], { icon: icon, title: config.categories[issue.category] || issue.category });
    marker.bindPopup(function () { return issuePopup(issue); }, { maxWidth: 300 });
    return marker;
  }

  function refreshMarkers() {
    if (!cluster || !map.hasLayer(cluster)) { return; }
    if (map.getZoom() < config.marker_zoom) {
      markerSequence++;
      cluster.clearLayers();
      markerNote = labels.zoom_for_markers;
      updateLegend();
      return;
    }
    var bounds = map.getBounds();
    var bbox = [bounds.getWest(), bounds.getSouth(), bounds.getEast(), bounds.getNorth()].map(function (v) { return v.toFixed(5); });
    var sequence = ++markerSequence;
    fetchJSON(config.urls.issues + "?" + filterParams(state, { metric: state.metric, bbox: bbox.join(",") }).toString()).then(function (result) {
      if (sequence !== markerSequence) { return; }
      cluster.clearLayers();
      cluster.addLayers(result.issues.map(markerFor));
      markerNote = result.truncated ? format(labels.markers_truncated, { n: result.limit }) : "";
      updateLegend();
    }).catch(function (error) {
      if (sequence === markerSequence) { setStatus(labels.load_failed + " (" + error.message + ")"); }
    });
  }

  // --- coverage ------------------------------------------------------------------------------

  var coverage = L.featureGroup();
  var coverageSequence = 0;

  function refreshCoverage() {
    if (!config.urls.coverage || !map.hasLayer(coverage)) { return; }
    var sequence = ++coverageSequence;
    fetchJSON(config.urls.coverage + "?" + filterParams(state, { metric: state.metric, level: config.level }).toString()).then(function (result) {
      if (sequence !== coverageSequence) { return; }
      coverage.clearLayers();
      coverageNote = result.message || "";
      coverageLegend = result.available ? result : null;
      if (result.available) {
        Object.keys(result.areas).forEach(function (code) {
          var layer = cellLayers[code];
          var area = result.areas[code];
          if (!layer) { return; }
          var polygon = L.polygon(layer.getLatLngs(), { renderer: renderer, fillColor: area.colour, fillOpacity: 0.75, color: "#555555", weight: 0.4 });
          polygon.bindTooltip(function () {
            var box = el("div");
            box.appendChild(el("div", "popup-title", layer.feature.name));
            box.appendChild(el("div", "popup-code", code));
            box.appendChild(el("div", null, labels.coverage_visits + ": " + (area.visit === null ? "—" : formatNumber(area.visit) + " %")
              + " (" + formatNumber(area.visited, 0) + " / " + formatNumber(area.households, 0) + ")"));
            box.appendChild(el("div", null, labels.coverage_patrol + ": " + (area.patrol === null ? "—" : formatNumber(area.patrol) + " %")));
            box.appendChild(el("div", null, labels.households_overdue + ": " + formatNumber(area.overdue_households, 0)));
            return box;
          });
          coverage.addLayer(polygon);
        });
      }
      updateLegend();
    }).catch(function (error) {
      if (sequence === coverageSequence) { setStatus(labels.load_failed + " (" + error.message + ")"); }
    });
  }

  // --- legend --------------------------------------------------------------------------------

  var legendControl = L.control({ position: "bottomright" });
  var legendBox = null;
  legendControl.onAdd = function () {
    legendBox = el("div", "map-legend");
    L.DomEvent.disableClickPropagation(legendBox);
    updateLegend();
    return legendBox;
  };

  function legendItem(list, colour, label) {
    var item = el("li");
    var swatch = el("span", "swatch");
    swatch.style.background = colour;
    item.appendChild(swatch);
    item.appendChild(document.createTextNode(label));
    list.appendChild(item);
  }

  function updateLegend() {
    if (!legendBox) { return; }
    legendBox.textContent = "";
    var level = config.level_labels[config.level] || config.level;
    legendBox.appendChild(el("h3", null, format(labels.per_level, { level: level }) + " · " + config.metric_labels[state.metric]));
    var list = el("ul");
    if (data) {
      if (data.legend.zero) { legendItem(list, data.legend.zero.colour, data.legend.zero.label); }
      data.legend.classes.forEach(function (c) { legendItem(list, c.colour, c.label); });
      if (data.legend.none) { legendItem(list, data.legend.none.colour, data.legend.none.label); }
    } else {
      list.appendChild(el("li", null, labels.loading));
    }
    legendBox.appendChild(list);
    if (coverageLegend && map.hasLayer(coverage)) {
      legendBox.appendChild(el("h3", null, coverageLegend.title + " · " + coverageLegend.period.from + " – " + coverageLegend.period.to));
      var coverageList = el("ul");
      coverageLegend.legend.classes.forEach(function (c) { legendItem(coverageList, c.colour, c.label); });
      legendItem(coverageList, coverageLegend.legend.none.colour, coverageLegend.legend.none.label);
      legendBox.appendChild(coverageList);
    }
    var notes = [];
    if (heatInfo && heatInfo.mode === "areas" && map.hasLayer(heat)) {
      notes.push(format(labels.heat_areas, { level: config.level_labels[heatInfo.level] || heatInfo.level, n: formatNumber(config.heat.raw_limit, 0) }));
    }
    if (markerNote && cluster && map.hasLayer(cluster)) { notes.push(markerNote); }
    if (coverageNote && map.hasLayer(coverage)) { notes.push(coverageNote); }
    notes.forEach(function (note) { legendBox.appendChild(el("p", "note", note)); });
  }

  // --- the panel -----------------------------------------------------------------------------

  function updatePanel() {
    ["total", "open", "overdue", "closed"].forEach(function (key) {
      var node = document.getElementById(key);
      if (node) { node.textContent = formatNumber(data.summary[key], 0); }
    });
    var rows = document.querySelectorAll("#children tr[data-code]");
    Array.prototype.forEach.call(rows, function (row) {
      var figures = data.children[row.getAttribute("data-code")] || [0, 0, 0, 0];
      Array.prototype.forEach.call(row.querySelectorAll("td[data-key]"), function (cell) {
        cell.textContent = formatNumber(figures[Number(cell.getAttribute("data-key"))], 0);
      });
      var link = row.querySelector("a");
      if (link) { link.href = overviewUrl(row.getAttribute("data-code")); }
    });
    Array.prototype.forEach.call(document.querySelectorAll(".breadcrumb a[data-code]"), function (link) {
      link.href = overviewUrl(link.getAttribute("data-code"));
    });
    showSelected();
  }

  function applyData(withHeat) {
    restyle();
    updatePanel();
    if (withHeat && data.heat) { setHeat(data.heat); }
    updateLegend();
  }

  var dataSequence = 0;

  function refreshData(withHeat) {
    var sequence = ++dataSequence;
    setStatus(labels.loading);
    var extra = { metric: state.metric, level: config.level, heat: withHeat ? "1" : "0" };
    return fetchJSON(config.urls.data + "?" + filterParams(state, extra).toString()).then(function (result) {
      if (sequence !== dataSequence) { return; }
      data = result;
      applyData(withHeat);
      setStatus("");
    }).catch(function (error) {
      if (sequence === dataSequence) { setStatus(labels.load_failed + " (" + error.message + ")"); }
    });
  }

  // --- filters and the URL -------------------------------------------------------------------

  var form = document.getElementById("filters");

  function readForm() {
    var fields = new FormData(form);
    state.metric = fields.get("metric") || config.defaults.metric;
    state.category = fields.get("category") || "";
    state.status = fields.getAll("status");
    state.source = fields.getAll("source");
    state.from = fields.get("from") || "";
    state.to = fields.get("to") || "";
    if (state.from && state.to && state.from > state.to) {
      var swap = state.from;
      state.from = state.to;
      state.to = swap;
    }
  }

  function writeForm() {
    if (!form) { return; }
    var set = function (name, value) {
      var field = form.elements.namedItem(name);
      if (field && field.tagName) { field.value = value; }
    };
    set("metric", state.metric);
    set("category", state.category);
    set("from", state.from);
    set("to", state.to);
    Array.prototype.forEach.call(form.querySelectorAll("input[type=checkbox]"), function (box) {
      box.checked = (state[box.name] || []).indexOf(box.value) >= 0;
    });
  }

  function updateLanguageLink() {
    var link = document.getElementById("lang-switch");
    if (!link) { return; }
    var other = new URL(link.href, window.location.href).searchParams.get("lang");
    var params = filterParams(state);
    params.set("lang", other);
    link.href = config.urls.page + "?" + params.toString();
  }

  function apply(history) {
    var url = pageUrl(state);
    if (history === "push") {
      window.history.pushState(copyState(state), "", url);
    } else if (history === "replace") {
      window.history.replaceState(copyState(state), "", url);
    }
    updateLanguageLink();
    syncWeek();
    refreshData(true);
    refreshMarkers();
    refreshCoverage();
  }

  if (form) {
    form.addEventListener("change", function () {
      readForm();
      apply("push");
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      readForm();
      writeForm();
      apply("push");
    });
  }

  window.addEventListener("popstate", function (event) {
    state = copyState(event.state || config.state);
    writeForm();
    apply(null);
  });

  // --- time view: one week at a time ---------------------------------------------------------

  var weeks = config.weeks || [];
  var slider = document.getElementById("week-slider");
  var playButton = document.getElementById("week-play");
  var allButton = document.getElementById("week-all");
  var weekLabel = document.getElementById("week-label");
  var playing = null;

  function addDays(isoDate, days) {
    var parts = isoDate.split("-").map(Number);
    var moment = new Date(Date.UTC(parts[0], parts[1] - 1, parts[2] + days));
    return moment.toISOString().slice(0, 10);
  }

  function weekIndex() {
    if (!state.from || !state.to) { return -1; }
    var index = weeks.indexOf(state.from);
    return index >= 0 && addDays(state.from, 6) === state.to ? index : -1;
  }

  function syncWeek() {
    if (!slider || !weekLabel) { return; }
    var index = weekIndex();
    if (index >= 0) {
      slider.value = String(index);
      weekLabel.textContent = format(labels.week, { start: weeks[index] }) + " – " + addDays(weeks[index], 6);
    } else {
      weekLabel.textContent = state.from || state.to ? (state.from || "…") + " – " + (state.to || "…") : labels.all_time;
    }
  }

  function showWeek(index, history) {
    state.from = weeks[index];
    state.to = addDays(weeks[index], 6);
    writeForm();
    apply(history);
  }

  function stopPlaying() {
    if (playing !== null) {
      clearInterval(playing);
      playing = null;
      playButton.textContent = labels.play;
    }
  }

  if (slider) {
    slider.addEventListener("input", function () {
      var index = Number(slider.value);
      weekLabel.textContent = format(labels.week, { start: weeks[index] }) + " – " + addDays(weeks[index], 6);
    });
    slider.addEventListener("change", function () {
      stopPlaying();
      showWeek(Number(slider.value), "push");
    });
    playButton.addEventListener("click", function () {
      if (playing !== null) {
        stopPlaying();
        return;
      }
      playButton.textContent = labels.pause;
      var index = weekIndex();
      playing = setInterval(function () {
        index = (index + 1) % weeks.length;
        showWeek(index, "replace");
      }, 1500);
    });
    allButton.addEventListener("click", function () {
      stopPlaying();
      state.from = "";
      state.to = "";
      writeForm();
      apply("push");
    });
  }

  // --- put it together -----------------------------------------------------------------------

  var overlays = {};
  overlays[labels.choropleth_layer] = choropleth;
  overlays[labels.heat_layer] = heat;
  if (cluster) { overlays[labels.markers_layer] = cluster; }
  overlays[labels.communities_layer] = communities;
  overlays[labels.streets_layer] = streets;
  if (config.urls.coverage) { overlays[labels.coverage_layer] = coverage; }
  var baseLayers = {};
  (config.names.tiles || []).forEach(function (name, i) {
    var layer = window[name];
    if (layer) { overlays[config.tile_labels[i]] = layer; }
  });
  choropleth.addTo(map);
  communities.addTo(map);
  streets.addTo(map);
  if (!map.hasLayer(heat)) { heat.addTo(map); }
  // Leaflet greys out a layer above its options.maxZoom; Leaflet.heat uses that option for
  // "full intensity from this zoom on", not as a limit, so the heatmap must stay switchable.
  var LayersControl = L.Control.Layers.extend({ _checkDisabledLayers: function () {} });
  new LayersControl(baseLayers, overlays, { collapsed: false, position: "topright" }).addTo(map);
  legendControl.addTo(map);

  map.on("overlayadd overlayremove", function (event) {
    if (event.layer === coverage && event.type === "overlayadd") { refreshCoverage(); }
    if (event.layer === cluster && event.type === "overlayadd") { refreshMarkers(); }
    updateLegend();
  });
  map.on("moveend", debounce(refreshMarkers, 200));

  window.history.replaceState(copyState(state), "", window.location.href);
  syncWeek();
  updateLanguageLink();

  (config.layers.choropleth.tiles ? Promise.resolve(buildTileChoropleth(config.layers.choropleth))
    : loadLayer("choropleth").then(buildChoropleth)).then(function () {
    if (data) {
      applyData(false);
      if (heatInfo.mode === "areas") { setHeat(heatInfo); }
    } else {
      refreshData(true);
    }
  }).catch(function (error) { setStatus(labels.load_failed + " (" + error.message + ")"); });
  loadLayer("communities").then(function (payload) {
    communities.addLayer(boundaries(payload, { color: "#3b4cc0", weight: 1.1 }));
  }).catch(function (error) { setStatus(labels.load_failed + " (" + error.message + ")"); });
  loadLayer("streets").then(function (payload) {
    streets.addLayer(boundaries(payload, { color: "#222222", weight: 2.2 }));
  }).catch(function (error) { setStatus(labels.load_failed + " (" + error.message + ")"); });
  refreshMarkers();

  // For tests and the console: the map and its layers.
  window.gridmapMap = { map: map, choropleth: choropleth, cells: cellLayers, heat: heat, cluster: cluster, coverage: coverage,
                        tiles: tileLayer, tileStats: tileStats, tileCodes: tileCodes,
                        state: function () { return copyState(state); } };
}());
