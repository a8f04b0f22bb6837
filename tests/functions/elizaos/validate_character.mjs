// Runs ElizaOS's own character validator (@elizaos/core's validateCharacter) from the pinned install
// over a JSON array of characters on stdin; prints one {success, issues} per character as JSON.
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const app = process.argv[2];
const core = await import(pathToFileURL(join(app, "node_modules/@elizaos/core/dist/node/index.node.js")).href);
const characters = JSON.parse(await Bun.stdin.text());
const results = characters.map((character) => {
  const result = core.validateCharacter(character);
  return {
    success: result.success,
    issues: (result.error?.issues ?? []).map((i) => ({ path: i.path, message: i.message })),
  };
});
process.stdout.write(JSON.stringify(results));
