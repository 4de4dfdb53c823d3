// Starts Swagger UI on /docs with the gateway's own /docs.json. A file, not an inline script:
// the page's Content-Security-Policy allows scripts from this origin only.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/docs.json",
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    defaultModelsExpandDepth: 0,
  });
});
