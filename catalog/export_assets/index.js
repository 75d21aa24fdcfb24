// The index: filter the embedded scan list by folder, status, date and text (name or note).
(function () {
  var scans = JSON.parse(document.getElementById("scans-data").textContent);
  var grid = document.getElementById("grid"), count = document.getElementById("count");
  var q = document.getElementById("q"), folder = document.getElementById("folder"), status = document.getElementById("status");
  var from = document.getElementById("from"), to = document.getElementById("to");
  function options(select, values) {
    values.filter(function (v, i, a) { return a.indexOf(v) === i; }).sort().forEach(function (v) {
      var o = document.createElement("option"); o.value = v; o.textContent = v || "(top level)"; select.appendChild(o);
    });
  }
  options(folder, scans.map(function (s) { return s.folder; }));
  options(status, scans.map(function (s) { return s.status; }));
  function render() {
    var text = q.value.toLowerCase(), shown = 0;
    grid.textContent = "";
    scans.forEach(function (s) {
      if (folder.value !== "*" && s.folder !== folder.value) return;
      if (status.value !== "*" && s.status !== status.value) return;
      if (from.value && s.date < from.value) return;
      if (to.value && s.date > to.value) return;
      if (text && (s.name + " " + s.notes).toLowerCase().indexOf(text) < 0) return;
      var a = document.createElement("a"); a.className = "card"; a.href = s.page;
      var img = document.createElement("img"); img.src = s.thumbnail; img.alt = s.name + (s.colorized ? " (AI-colorized)" : ""); img.loading = "lazy";
      a.appendChild(img);
      var name = document.createElement("div"); name.textContent = s.name; a.appendChild(name);
      var meta = document.createElement("div"); meta.className = "muted";
      meta.textContent = (s.folder || "(top level)") + " · " + s.status + " · " + s.date; a.appendChild(meta);
      if (s.colorized) { var b = document.createElement("span"); b.className = "badge"; b.textContent = "AI-colorized"; a.appendChild(b); }
      grid.appendChild(a); shown++;
    });
    count.textContent = shown + " of " + scans.length + " scans";
  }
  [q, folder, status, from, to].forEach(function (el) { el.addEventListener("input", render); });
  render();
})();
