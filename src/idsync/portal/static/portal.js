// idsync portal: the project's own small script. Every page works without it;
// it adds a text filter to long lists of changes, and follows a run under way
// live (the API's server-sent events), reloading its report once it is over.
"use strict";

function idsyncFilters() {
  document.querySelectorAll("input[data-filters]").forEach(function (input) {
    var list = document.querySelector(input.getAttribute("data-filters"));
    if (!list) { return; }
    input.hidden = false;
    var label = document.querySelector('label[for="' + input.id + '"]');
    if (label) { label.hidden = false; }
    input.addEventListener("input", function () {
      var text = input.value.trim().toLowerCase();
      list.querySelectorAll(":scope > li").forEach(function (item) {
        item.hidden = text !== "" && item.textContent.toLowerCase().indexOf(text) < 0;
      });
    });
  });
}

function idsyncLiveRun() {
  var section = document.getElementById("live-run");
  if (!section || typeof EventSource === "undefined") { return; }
  var status = document.getElementById("live-status");
  var counts = document.getElementById("live-counts");
  var log = document.getElementById("run-log");
  var empty = document.getElementById("log-empty");
  var skip = parseInt(section.getAttribute("data-log-lines") || "0", 10);  // the lines the page shows already
  var source = new EventSource(section.getAttribute("data-events"));
  status.textContent = "Following the run live…";

  source.addEventListener("progress", function (event) {
    var data = JSON.parse(event.data);
    status.textContent = "The run is " + data.state.replace(/_/g, " ") + ".";
    section.setAttribute("data-state", data.state);
    counts.textContent = "";
    Object.keys(data.counts).forEach(function (name) {
      if (!data.counts[name]) { return; }
      var item = document.createElement("li");
      item.textContent = name.replace(/_/g, " ") + ": " + data.counts[name];
      counts.appendChild(item);
    });
  });
  source.addEventListener("log", function (event) {
    if (skip > 0) { skip -= 1; return; }
    var line = JSON.parse(event.data);
    var item = document.createElement("li");
    item.className = "level-" + line.level;
    item.textContent = line.at + " " + line.level + " " + line.message;
    log.appendChild(item);
    if (empty) { empty.hidden = true; }
  });
  source.addEventListener("end", function (event) {
    var data = JSON.parse(event.data);
    source.close();
    section.setAttribute("data-state", data.state);
    status.textContent = "The run is " + data.state.replace(/_/g, " ") + "; loading its report…";
    window.location.reload();
  });
  source.addEventListener("error", function () {
    if (source.readyState === EventSource.CLOSED) {
      status.textContent = "Live progress stopped: reload the page to see the run.";
    }
  });
}

document.addEventListener("DOMContentLoaded", function () {
  idsyncFilters();
  idsyncLiveRun();
});
