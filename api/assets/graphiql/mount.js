// Canopy's own: mounts GraphiQL (loaded just before) against this server's
// /graphql. A file rather than an inline script, so that the page's
// Content-Security-Policy can say `script-src 'self'` and nothing more.
(function () {
  'use strict';
  var fetcher = GraphiQL.createFetcher({ url: '/graphql' });
  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      // The headers editor shows: paste `{"Authorization": "Bearer …"}` there.
      defaultEditorToolsVisibility: 'headers',
    })
  );
})();
