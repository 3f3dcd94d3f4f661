// A tiny app for the plexus demo: answers every request with where it runs.
// Plain JavaScript so that any Node the server has can run it.
const http = require('node:http');

const port = Number(process.env.PORT || 18080);
const started = new Date().toISOString();
const server = http.createServer((req, res) => {
  if (req.url === '/health') {
    res.end('ok\n');
    return;
  }
  res.setHeader('content-type', 'text/plain');
  res.end(`hello from ${process.env.GREETING_FROM || 'plexus'} (pid ${process.pid}, up since ${started})\n`);
});
server.listen(port, '127.0.0.1', () => console.log(`hello listening on 127.0.0.1:${port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
