// The dispatcher page (调度台): the actor's name is typed once, remembered by the browser and
// copied into every action form when it is submitted (until logins come with #8).
(function () {
  "use strict";
  var KEY = "gridmap.dispatcher.actor";
  var field = document.getElementById("actor");
  if (!field) {
    return;
  }
  try {
    field.value = window.localStorage.getItem(KEY) || "";
  } catch (ignored) {
    // storage may be disabled; the name then lasts as long as the page
  }
  field.addEventListener("change", function () {
    try {
      window.localStorage.setItem(KEY, field.value.trim());
    } catch (ignored) {
      // see above
    }
  });
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList || !form.classList.contains("action-form")) {
      return;
    }
    var actor = form.querySelector("input[name=actor]");
    if (actor) {
      actor.value = field.value.trim();
    }
  });
})();
