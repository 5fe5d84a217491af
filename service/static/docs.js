// Starts Swagger UI from the project's own copy (no CDN); the page says where the spec is.
// A file, not an inline script, so the docs page's CSP can forbid inline scripts.
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    validatorUrl: null, // the public validator would send our spec to a third party
  });
});
