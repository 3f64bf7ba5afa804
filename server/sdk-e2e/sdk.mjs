// The official OpenAI Node SDK, unchanged, against routelab: generate,
// stream a generation, and edit with an uploaded file. The Go test
// TestOpenAINodeSDK (server/sdk_test.go) starts a server and runs this with
//   BASE_URL  routelab's /v1 base URL
//   API_KEY   a tenant key
//   PNG       path of a PNG to upload for the edit
// It prints one JSON object on its last line; any failure exits 1.
import fs from "node:fs";
import OpenAI, { toFile } from "openai";

const client = new OpenAI({ baseURL: process.env.BASE_URL, apiKey: process.env.API_KEY, maxRetries: 0 });
const out = {};

const gen = await client.images.generate({ model: "auto", prompt: "a lighthouse at dusk", size: "1024x1024" });
out.generate = { images: gen.data.length, b64: (gen.data[0].b64_json || "").length, size: gen.size };

const stream = await client.images.generate({ model: "auto", prompt: "a cute baby sea otter", size: "1536x1024", stream: true, partial_images: 1 });
const types = [];
let completed = null;
for await (const ev of stream) {
  types.push(ev.type);
  if (ev.type === "image_generation.completed") completed = ev;
}
out.stream = { types, b64: completed ? completed.b64_json.length : 0, size: completed ? completed.size : "", usage: !!(completed && completed.usage) };

const edit = await client.images.edit({
  model: "auto", prompt: "give the cat a hat",
  image: await toFile(fs.readFileSync(process.env.PNG), "cat.png", { type: "image/png" }),
});
out.edit = { images: edit.data.length, b64: (edit.data[0].b64_json || "").length };

try {
  await client.images.generate({ model: "no-such-model", prompt: "x" });
  out.unknown_model = "accepted";
} catch (e) {
  out.unknown_model = { status: e.status, code: e.code || (e.error && e.error.code) };
}
console.log(JSON.stringify(out));
