// The model page's two actions, both through Airflow's REST API as the logged-in user (the
// browser sends the UI's session cookie): who approved each promotion, and the rollback itself.
(function () {
  "use strict";
  const api = document.body.dataset.uiRoot + "/api/v2";
  const ui = document.body.dataset.uiRoot;
  const json = { Accept: "application/json" };
  const path = (text) => encodeURIComponent(text);

  async function detail(resp) {
    try {
      const body = await resp.json();
      return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail || body);
    } catch (err) {
      return resp.statusText;
    }
  }

  // Approval column: the Human-in-the-loop answers of the run that moved the alias.
  document.querySelectorAll("td.approval[data-run-id]").forEach(async (cell) => {
    const url = `${api}/dags/${path(cell.dataset.dagId)}/dagRuns/${path(cell.dataset.runId)}/hitlDetails`;
    try {
      const resp = await fetch(url, { credentials: "same-origin", headers: json });
      if (!resp.ok) {
        cell.textContent = resp.status === 403 ? "not visible to you" : `unknown (HTTP ${resp.status})`;
        return;
      }
      const answered = ((await resp.json()).hitl_details || []).filter((d) => d.response_received);
      cell.textContent = answered.length
        ? answered
            .map((d) => `${(d.chosen_options || []).join(", ")} by ${d.responded_by_user ? d.responded_by_user.name : "?"}`)
            .join("; ")
        : "no approval step";
    } catch (err) {
      cell.textContent = "unknown";
    }
  });

  const form = document.getElementById("rollback-form");
  const status = document.getElementById("rollback-status");
  if (!form) return;

  function say(text, error, link) {
    status.textContent = text;
    status.className = error ? "error" : "";
    if (link) {
      const a = document.createElement("a");
      a.href = link.href;
      a.target = "_top";
      a.textContent = link.text;
      status.append(" ", a);
    }
  }

  async function follow(dagId, runId, runLink) {
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const resp = await fetch(`${api}/dags/${path(dagId)}/dagRuns/${path(runId)}`, { credentials: "same-origin", headers: json });
      if (!resp.ok) return say(`Cannot follow the run (HTTP ${resp.status}): ${await detail(resp)}`, true, runLink);
      const state = (await resp.json()).state;
      if (state === "success") {
        say("Rolled back. Reloading...", false, runLink);
        return window.location.reload();
      }
      if (state === "failed") return say("The rollback run failed: see its log.", true, runLink);
      say(`Rollback run ${state}...`, false, runLink);
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const dagId = form.dataset.dagId;
    const conf = { model_name: form.dataset.model, version: form.elements.version.value || null, reason: form.elements.reason.value };
    form.querySelector("button").disabled = true;
    say(`Triggering ${dagId}...`);
    try {
      const resp = await fetch(`${api}/dags/${path(dagId)}/dagRuns`, {
        method: "POST",
        credentials: "same-origin",
        headers: { ...json, "Content-Type": "application/json" },
        body: JSON.stringify({ logical_date: null, conf: conf }),
      });
      if (!resp.ok) {
        say(`Airflow refused the rollback (HTTP ${resp.status}): ${await detail(resp)}`, true);
        return;
      }
      const run = await resp.json();
      const runLink = { href: `${ui}/dags/${path(dagId)}/runs/${path(run.dag_run_id)}`, text: run.dag_run_id };
      const dag = await fetch(`${api}/dags/${path(dagId)}`, { credentials: "same-origin", headers: json });
      if (dag.ok && (await dag.json()).is_paused) {
        say(`Triggered, but ${dagId} is paused: unpause it to run the rollback.`, true, runLink);
        return;
      }
      say("Rollback run queued...", false, runLink);
      await follow(dagId, run.dag_run_id, runLink);
    } catch (err) {
      say(`The rollback could not be sent: ${err}`, true);
    } finally {
      form.querySelector("button").disabled = false;
    }
  });
})();
