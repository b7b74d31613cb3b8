// Progressive enhancement only: the page works without it. Ticking a filter box or choosing how
// many to contact shows the new selection at once; typed numbers apply with Enter or "Update".
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("filters");
  if (!form) return;
  form.addEventListener("change", (event) => {
    const target = event.target;
    if (target instanceof HTMLInputElement && (target.type === "checkbox" || target.type === "radio")) {
      form.requestSubmit();
    }
  });
  for (const [id, how] of [["size", "size"], ["budget", "budget"]]) {
    const input = document.getElementById(id);
    if (!input) continue;
    input.addEventListener("focus", () => {
      const radio = form.querySelector(`input[name="how"][value="${how}"]`);
      if (radio) radio.checked = true;
    });
  }
});
