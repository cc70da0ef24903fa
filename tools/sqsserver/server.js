// Starts local-aws-sqs, a local SQS server speaking the JSON protocol that
// current AWS SDKs use, on the loopback port given as the first argument.
// The SQS tests start it through pkg/queuer/sqstest; `make sqs-server`
// installs the package into .cache/sqsserver, which NODE_PATH points at.
"use strict";

const { createSqsServer } = require("local-aws-sqs");

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error("usage: node server.js PORT");
  process.exit(2);
}

createSqsServer({
  port,
  hostname: "127.0.0.1",
  // Tests create and delete queues freely; the 60 s wait AWS imposes before
  // a name is reused would only slow them down.
  emulateQueueCreationLifecycle: false,
})
  .then(() => console.log(`local-aws-sqs listening on 127.0.0.1:${port}`))
  .catch((err) => {
    console.error(err);
    process.exit(1);
  });

// Exit at once on SIGTERM/SIGINT, as a crash would, so tests can stop and
// restart it.
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
