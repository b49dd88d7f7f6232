// The run form's cost estimate (SPEC §11). On a test's page the page renders the estimate for every active
// model; on a suite's page (data-suite) this asks for it as the page loads, for the tests a run of the suite
// would start. When models are ticked or the samples per model change, it asks POST
// /api/v1/executions/estimate for that selection and updates the text; a refusal (too many evaluations, no
// test to run) is shown as the API words it.
// Plain JavaScript, no framework; without JavaScript a test's default estimate stays shown.
(function () {
  "use strict";
  var box = document.getElementById("run-estimate");
  if (!box) return;
  var form = box.closest("form");
  if (!form) return;
  var token = form.querySelector('input[name="csrfmiddlewaretoken"]');
  var sequence = 0;
  var everyModel = box.querySelector('[data-estimate="scope"]').textContent;
  var shown = !box.dataset.suite; // a test's page renders its default estimate; a suite's has none until asked

  function money(value) {
    return "$" + Number(value).toFixed(5);
  }

  function Refusal(message) {
    this.message = message;
  }

  function show(name, text) {
    var el = box.querySelector('[data-estimate="' + name + '"]');
    if (el) el.textContent = text;
  }

  function update() {
    var ticked = Array.prototype.map.call(
      form.querySelectorAll('input[name="models"]:checked'),
      function (input) { return input.value; }
    );
    var body = box.dataset.suite ? { suite_id: box.dataset.suite } : { test_ids: [box.dataset.test] };
    if (ticked.length) body.model_ids = ticked;
    var repeatsInput = form.querySelector('input[name="repeats"]');
    if (repeatsInput && repeatsInput.value !== "") {
      var repeats = Number(repeatsInput.value);
      if (!Number.isInteger(repeats) || repeats < 1 || repeats > 20) {
        ++sequence; // drop any answer still on its way: it was for another number of samples
        show("scope", "1 to 20 samples per model");
        show("refusal", "");
        box.classList.remove("muted");
        return;
      }
      body.repeats = repeats;
    }
    var mine = ++sequence;
    box.classList.add("muted");
    fetch(box.dataset.url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-CSRFToken": token ? token.value : "",
      },
      body: JSON.stringify(body),
    })
      .then(function (response) {
        if (response.ok) return response.json();
        return response.json().then(
          function (data) { throw new Refusal(data && data.error ? data.error.message : ""); },
          function () { throw new Error("HTTP " + response.status); }
        );
      })
      .then(function (data) {
        if (mine !== sequence) return; // a later change is already on its way
        var scope = ticked.length ? ticked.length + " ticked model" + (ticked.length === 1 ? "" : "s") : everyModel;
        if (body.repeats > 1) scope += ", " + body.repeats + " samples each";
        shown = true;
        show("scope", scope);
        show("refusal", "");
        show("total_usd", money(data.total_usd));
        show("judge_cost_usd", money(data.judge_cost_usd));
        show("evaluations", data.evaluations.toLocaleString());
        show("input_tokens", data.input_tokens.toLocaleString());
        show("output_tokens", data.output_tokens.toLocaleString());
      })
      .catch(function (error) {
        if (mine !== sequence) return;
        if (error instanceof Refusal && error.message) {
          show("scope", "this selection");
          ["total_usd", "judge_cost_usd", "evaluations", "input_tokens", "output_tokens"].forEach(function (name) {
            show(name, "—");
          });
          show("refusal", error.message);
        } else {
          show("scope", shown ? "the last selection (could not update)" : everyModel + " (not available just now)");
        }
      })
      .finally(function () {
        if (mine === sequence) box.classList.remove("muted");
      });
  }

  // One request once the ticking stops, not one per tick: estimates have their own budget (THROTTLE_ESTIMATE).
  var pending = null;
  form.addEventListener("change", function (event) {
    if (!event.target || (event.target.name !== "models" && event.target.name !== "repeats")) return;
    clearTimeout(pending);
    pending = setTimeout(update, 300);
  });
  if (box.dataset.suite) update(); // a suite's page renders no estimate: a suite may select thousands of tests
})();
