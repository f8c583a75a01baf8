// idsync portal: the project's own small script. Every page works without it;
// it adds a text filter to long lists of changes, and in the mapping editor
// shows what the chosen kind of value takes as soon as it is chosen.
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
  document.querySelectorAll("select[data-hints]").forEach(function (select) {
    var field = document.querySelector(select.getAttribute("data-hints"));
    if (!field) { return; }
    select.addEventListener("change", function () {
      var chosen = select.options[select.selectedIndex];
      field.placeholder = (chosen && chosen.getAttribute("data-hint")) || "";
    });
  });
});
