// Asks before a destructive form is sent: <form data-confirm="Archive this test?">. A listener in a file
// rather than an inline onsubmit="" attribute, which the Content-Security-Policy refuses to run.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
})();
