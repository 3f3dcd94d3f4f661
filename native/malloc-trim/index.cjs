'use strict';
// The addon built by `node-gyp rebuild` (npm runs it on install). It throws when the build
// failed; the agent then goes without (src/cli/agent-malloc-trim.ts).
module.exports = require('./build/Release/malloc_trim.node');
