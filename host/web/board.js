// The board's only script, embedded in the binary. It inserts a field or
// constant expression into the text field last in focus; without it, the
// expressions can still be copied by hand.
(function () {
  var last = null;
  document.addEventListener("focusin", function (e) {
    if (e.target.classList && e.target.classList.contains("insertable")) last = e.target;
  });
  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest("button.insert");
    if (!button || !last) return;
    var text = button.getAttribute("data-insert");
    var start = last.selectionStart, end = last.selectionEnd;
    last.value = last.value.slice(0, start) + text + last.value.slice(end);
    last.focus();
    last.selectionStart = last.selectionEnd = start + text.length;
  });
})();
