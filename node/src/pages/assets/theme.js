// Light or dark: the system's choice (prefers-color-scheme) until the person picks one with
// the toggle, which is remembered in localStorage. Without JavaScript the toggle stays hidden.
(function () {
  'use strict';
  var root = document.documentElement;
  var key = 'gatehouse-theme';
  try {
    var stored = window.localStorage.getItem(key);
    if (stored === 'light' || stored === 'dark') {
      root.setAttribute('data-theme', stored);
    }
  } catch (ignored) {
    // Storage may be blocked; the system's choice stands.
  }

  function current() {
    var chosen = root.getAttribute('data-theme');
    if (chosen === 'light' || chosen === 'dark') {
      return chosen;
    }
    return window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
  }

  document.addEventListener('DOMContentLoaded', function () {
    var button = document.getElementById('theme-toggle');
    if (!button) {
      return;
    }
    function show() {
      var dark = current() === 'dark';
      button.setAttribute('aria-pressed', dark ? 'true' : 'false');
    }
    button.addEventListener('click', function () {
      var next = current() === 'dark' ? 'light' : 'dark';
      root.setAttribute('data-theme', next);
      try {
        window.localStorage.setItem(key, next);
      } catch (ignored) {
        // Not remembered, still applied.
      }
      show();
    });
    show();
    button.hidden = false;
  });
})();
