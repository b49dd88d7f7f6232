// Arena keys: A, B and T press the vote buttons, N follows the "next battle" link (elements marked with
// data-key). A file rather than an inline script, which the Content-Security-Policy refuses to run; without
// JavaScript the buttons and the link work as they are.
(function () {
  "use strict";
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    var target = event.target;
    if (target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
    var key = (event.key || "").toLowerCase();
    if (!/^[abtn]$/.test(key)) return;
    var control = document.querySelector('[data-key="' + key + '"]');
    if (!control || control.disabled) return;
    event.preventDefault();
    control.click();
  });
})();
