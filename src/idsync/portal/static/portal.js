// idsync portal: the project's own small script. Every page works without it;
// it only adds a text filter to long lists of changes.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
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
});
