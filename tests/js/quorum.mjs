// One quorum approval driven by the AWS SDK for JavaScript v3 against an AWS-compatible endpoint:
// start, receive the requests from the queue, answer, read the outcome and the history, refuse a stale token.
// Usage: node quorum.mjs ENDPOINT STATE_MACHINE_ARN QUEUE_URL; prints one JSON line with what it saw.
import { SFNClient, StartExecutionCommand, SendTaskSuccessCommand, DescribeExecutionCommand,
  GetExecutionHistoryCommand } from "@aws-sdk/client-sfn";
import { SQSClient, ReceiveMessageCommand, DeleteMessageCommand } from "@aws-sdk/client-sqs";

const [endpoint, stateMachineArn, queueUrl] = process.argv.slice(2);
const config = { endpoint, region: "us-east-1", credentials: { accessKeyId: "testing", secretAccessKey: "testing" } };
const sfn = new SFNClient(config);
const sqs = new SQSClient(config);
const deadline = Date.now() + 60_000;
const tag = Math.random().toString(36).slice(2, 8);
const approvers = ["alice", "bob", "carol"].map((name) => `${name}-js-${tag}`);

const { executionArn } = await sfn.send(new StartExecutionCommand({
  stateMachineArn, input: JSON.stringify({ approvers, quorum: 2, request: { client: "aws-sdk-js-v3" }, timeoutSeconds: 120 }),
}));

const tokens = {};
while (Object.keys(tokens).length < approvers.length) {
  if (Date.now() > deadline) throw new Error(`requests not received: ${JSON.stringify(Object.keys(tokens))}`);
  const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
  for (const message of Messages) {
    const event = JSON.parse(message.Body);
    if (event.detail.executionArn === executionArn) {
      tokens[event.detail.approver] = event.detail.taskToken;
      await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }));
    }
  }
}

for (const approver of approvers.slice(0, 2)) {
  await sfn.send(new SendTaskSuccessCommand({ taskToken: tokens[approver], output: JSON.stringify({ decision: "approve", comment: `from ${approver}` }) }));
}
let described;
do {
  if (Date.now() > deadline) throw new Error("the execution did not end");
  described = await sfn.send(new DescribeExecutionCommand({ executionArn }));
  if (described.status === "RUNNING") await new Promise((resolve) => setTimeout(resolve, 100));
} while (described.status === "RUNNING");

const { events } = await sfn.send(new GetExecutionHistoryCommand({ executionArn, maxResults: 1000 }));
let stale;
try {
  await sfn.send(new SendTaskSuccessCommand({ taskToken: tokens[approvers[2]], output: JSON.stringify({ decision: "reject" }) }));
  stale = "accepted";
} catch (error) {
  stale = error.name;
}
console.log(JSON.stringify({ approvers, status: described.status, output: JSON.parse(described.output),
  historyTypes: events.map((event) => event.type), stale }));
