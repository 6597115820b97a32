// The official openai Node client against `threadline serve`.
//
//   node tests/node/client_check.mjs BASE_URL MODEL
//
// BASE_URL is the server's `/v1` URL, MODEL the served agent's name. Each check runs on its own
// and records what the client saw (or the error it threw), so one broken route does not hide the
// others; the whole record is printed as one JSON object on stdout for
// tests/server/test_node_client.py to assert on. Texts carry [node-...] markers so the Python
// side can find the upstream requests each check caused.

import OpenAI from "openai";

const [baseURL, model] = process.argv.slice(2);
if (!baseURL || !model) {
  console.error("usage: node client_check.mjs BASE_URL MODEL");
  process.exit(2);
}

const client = new OpenAI({ apiKey: "node-test-key", baseURL, maxRetries: 0, timeout: 30_000 });
const CONVERSATION_HEADER = "X-Threadline-Conversation-Id";

function describeError(err) {
  if (err instanceof OpenAI.APIError) {
    return {
      class: err.constructor.name,
      status: err.status ?? null,
      type: err.type ?? null,
      code: err.code ?? null,
      param: err.param ?? null,
      message: err.message,
      error: err.error ?? null,
    };
  }
  return { class: err?.constructor?.name ?? typeof err, message: String(err?.stack ?? err) };
}

// Whatever a call throws, as data (a call expected to fail is checked this way).
async function thrown(promise) {
  try {
    const value = await promise;
    return { threw: false, value };
  } catch (err) {
    return { threw: true, error: describeError(err) };
  }
}

function textOf(item) {
  if (typeof item.content === "string") return item.content;
  if (!Array.isArray(item.content)) return null;
  return item.content.map((part) => part.text ?? "").join("");
}

function message(role, text) {
  const type = role === "assistant" ? "output_text" : "input_text";
  return { type: "message", role, content: [{ type, text }] };
}

async function conversationsCrud() {
  const created = await client.conversations.create({ metadata: { user: "u1", topic: "crud" } });
  const retrieved = await client.conversations.retrieve(created.id);
  const updated = await client.conversations.update(created.id, {
    metadata: { user: "u1", topic: "renamed" },
  });
  const afterUpdate = await client.conversations.retrieve(created.id);
  const deleted = await client.conversations.delete(created.id);
  const afterDelete = await thrown(client.conversations.retrieve(created.id));
  const withItems = await client.conversations.create({
    items: [message("user", "seeded [node-seed]")],
  });
  const seeded = await client.conversations.items.list(withItems.id, { order: "asc" });
  return {
    created,
    retrieved,
    updated,
    afterUpdate,
    deleted,
    afterDelete,
    seededTexts: seeded.data.map(textOf),
  };
}

async function itemsPaging() {
  const conv = await client.conversations.create({ metadata: { topic: "paging" } });
  const texts = ["m0", "m1", "m2", "m3", "m4"];
  const created = await client.conversations.items.create(conv.id, {
    items: texts.map((text, i) => message(i % 2 ? "assistant" : "user", text)),
  });
  const ids = created.data.map((item) => item.id);
  const byDefault = await client.conversations.items.list(conv.id);
  const firstPage = await client.conversations.items.list(conv.id, { order: "asc", limit: 2 });
  const secondPage = await client.conversations.items.list(conv.id, {
    order: "asc",
    limit: 2,
    after: firstPage.last_id,
  });
  const nextPage = firstPage.hasNextPage() ? await firstPage.getNextPage() : null;
  const walkedAsc = [];
  for await (const item of client.conversations.items.list(conv.id, { order: "asc", limit: 2 })) {
    walkedAsc.push(item.id);
  }
  const walkedDesc = [];
  for await (const item of client.conversations.items.list(conv.id, { limit: 3 })) {
    walkedDesc.push(item.id);
  }
  const one = await client.conversations.items.retrieve(ids[2], { conversation_id: conv.id });
  const afterItemDelete = await client.conversations.items.delete(ids[4], {
    conversation_id: conv.id,
  });
  const remaining = await client.conversations.items.list(conv.id, { order: "asc" });
  const missingItem = await thrown(
    client.conversations.items.retrieve(ids[4], { conversation_id: conv.id }),
  );
  const page = (p) => ({
    ids: p.data.map((item) => item.id),
    texts: p.data.map(textOf),
    first_id: p.body?.first_id ?? p.first_id ?? null,
    last_id: p.last_id,
    has_more: p.has_more,
    object: p.body?.object ?? null,
  });
  return {
    conversationId: conv.id,
    created: { object: created.object, ids, texts: created.data.map(textOf), has_more: created.has_more },
    byDefault: page(byDefault),
    firstPage: page(firstPage),
    secondPage: page(secondPage),
    nextPage: nextPage && page(nextPage),
    walkedAsc,
    walkedDesc,
    retrieved: { id: one.id, type: one.type, role: one.role, text: textOf(one) },
    afterItemDelete: { id: afterItemDelete.id, object: afterItemDelete.object },
    remaining: page(remaining),
    missingItem,
  };
}

async function responsesWithMemory() {
  const conv = await client.conversations.create({ metadata: { topic: "memory" } });
  const first = await client.responses.create({
    model,
    input: "What city is the Golden Gate Bridge in? [node-turn-1]",
    conversation: conv.id,
  });
  const second = await client.responses.create({
    model,
    input: "What state is it in? [node-turn-2]",
    conversation: conv.id,
  });
  const items = await client.conversations.items.list(conv.id, { order: "asc" });
  const retrieved = await client.responses.retrieve(second.id);
  const inputItems = await client.responses.inputItems.list(second.id);
  const both = await thrown(
    client.responses.create({
      model,
      input: "both ids [node-both]",
      conversation: conv.id,
      previous_response_id: first.id,
    }),
  );
  const summary = (r) => ({
    id: r.id,
    object: r.object,
    status: r.status,
    model: r.model,
    output_text: r.output_text,
    conversation: r.conversation ?? null,
    outputTypes: r.output.map((o) => o.type),
    usage: r.usage ?? null,
  });
  return {
    conversationId: conv.id,
    first: summary(first),
    second: summary(second),
    retrieved: summary(retrieved),
    inputItemTexts: inputItems.data.map(textOf),
    items: items.data.map((item) => ({ type: item.type, role: item.role, text: textOf(item) })),
    both,
  };
}

async function responsesStreaming() {
  const conv = await client.conversations.create({ metadata: { topic: "stream" } });
  const stream = await client.responses.create({
    model,
    input: "Stream me a sentence [node-stream-1]",
    conversation: conv.id,
    stream: true,
  });
  const events = [];
  let completed = null;
  let deltas = "";
  for await (const event of stream) {
    events.push({ type: event.type, sequence_number: event.sequence_number });
    if (event.type === "response.output_text.delta") deltas += event.delta;
    if (event.type === "response.completed") completed = event.response;
  }
  // The SDK's stream helper re-assembles the response from the events and throws on events
  // that do not fit together (an unknown output index, a delta before its part).
  const helper = client.responses.stream({
    model,
    input: "And another one [node-stream-2]",
    conversation: conv.id,
  });
  const helperTypes = [];
  for await (const event of helper) helperTypes.push(event.type);
  const final = await helper.finalResponse();
  const items = await client.conversations.items.list(conv.id, { order: "asc" });
  return {
    conversationId: conv.id,
    events,
    deltas,
    completed: completed && {
      id: completed.id,
      status: completed.status,
      output_text: completed.output?.flatMap((o) => o.content ?? []).map((c) => c.text ?? "").join(""),
    },
    helperTypes,
    helperFinal: { id: final.id, status: final.status, output_text: final.output_text },
    itemTexts: items.data.map(textOf),
  };
}

async function chatCompletions() {
  const conv = await client.conversations.create({ metadata: { topic: "chat" } });
  const headers = { [CONVERSATION_HEADER]: conv.id };
  const firstMessages = [{ role: "user", content: "Hi there [node-chat-1]" }];
  const first = await client.chat.completions.create({ model, messages: firstMessages }, { headers });
  const answer = first.choices[0].message.content;
  // The whole transcript again, the way chat front ends send it: only the new tail is stored.
  const secondMessages = [
    ...firstMessages,
    { role: "assistant", content: answer },
    { role: "user", content: "Remember me? [node-chat-2]" },
  ];
  const second = await client.chat.completions.create(
    { model, messages: secondMessages },
    { headers },
  );
  const items = await client.conversations.items.list(conv.id, { order: "asc" });
  const diverged = await thrown(
    client.chat.completions.create(
      {
        model,
        messages: [
          { role: "user", content: "A different start [node-chat-diverge]" },
          { role: "assistant", content: "something else" },
          { role: "user", content: "and more [node-chat-diverge-2]" },
        ],
      },
      { headers },
    ),
  );
  const stateless = await client.chat.completions.create({
    model,
    messages: [{ role: "user", content: "No memory here [node-chat-stateless]" }],
  });
  const streamed = await client.chat.completions.create(
    { model, messages: [{ role: "user", content: "Stream chat [node-chat-stream]" }], stream: true },
    { headers: { [CONVERSATION_HEADER]: (await client.conversations.create({})).id } },
  );
  let streamedText = "";
  let finish = null;
  for await (const chunk of streamed) {
    for (const choice of chunk.choices) {
      streamedText += choice.delta?.content ?? "";
      finish = choice.finish_reason ?? finish;
    }
  }
  const summary = (c) => ({
    id: c.id,
    object: c.object,
    model: c.model,
    content: c.choices[0].message.content,
    finish_reason: c.choices[0].finish_reason,
  });
  return {
    conversationId: conv.id,
    first: summary(first),
    second: summary(second),
    items: items.data.map((item) => ({ role: item.role, text: textOf(item) })),
    diverged,
    stateless: summary(stateless),
    streamed: { text: streamedText, finish_reason: finish },
  };
}

async function errors() {
  const missing = await thrown(client.conversations.retrieve("conv_node_missing"));
  const missingItems = await thrown(client.conversations.items.list("conv_node_missing"));
  const badLimit = await thrown(
    client.conversations.items.list((await client.conversations.create({})).id, { limit: 1000 }),
  );
  const missingResponse = await thrown(client.responses.retrieve("resp_node_missing"));
  return { missing, missingItems, badLimit, missingResponse };
}

async function models() {
  const page = await client.models.list();
  return { ids: page.data.map((m) => m.id), objects: page.data.map((m) => m.object) };
}

const checks = {
  conversationsCrud,
  itemsPaging,
  responsesWithMemory,
  responsesStreaming,
  chatCompletions,
  errors,
  models,
};

const results = {};
for (const [name, check] of Object.entries(checks)) {
  try {
    results[name] = { ok: true, value: await check() };
  } catch (err) {
    results[name] = { ok: false, error: describeError(err) };
  }
}
process.stdout.write(JSON.stringify(results));
