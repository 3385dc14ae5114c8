// The pages' sign-in session (web/session.js): `node --test tests/client`.
import assert from "node:assert/strict";
import { test } from "node:test";

// session.js reads the local stack's configuration when it loads.
globalThis.fetch = async () =>
  new Response(JSON.stringify({ cognitoEndpoint: "http://cognito.test/", userPoolClientId: "c" }));
const { tokenSource } = await import("../../web/session.js");

/** An unsigned JWT whose payload says it expires at `exp` (the page only reads the claim). */
function idToken(exp, name) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${part({ alg: "none" })}.${part({ exp, name })}.`;
}

test("a token far from its end is used as it is", async () => {
  const refreshes = [];
  const source = tokenSource(
    { IdToken: idToken(10_000, "first"), RefreshToken: "r" },
    async (token) => refreshes.push(token),
    () => 10_000 - 61,
  );
  assert.equal(await source(), idToken(10_000, "first"));
  assert.deepEqual(refreshes, []);
});

test("a token a minute from its end is refreshed once for callers asking together", async () => {
  const refreshes = [];
  let now = 10_000 - 60;
  const source = tokenSource(
    { IdToken: idToken(10_000, "first"), RefreshToken: "r" },
    async (token) => {
      refreshes.push(token);
      return { IdToken: idToken(13_600, "second") };
    },
    () => now,
  );
  const tokens = await Promise.all([source(), source(), source()]);
  assert.deepEqual(tokens, Array(3).fill(idToken(13_600, "second")));
  assert.deepEqual(refreshes, ["r"]);
  // The refreshed token is kept until it nears its own end, and the same refresh token renews it.
  now = 13_600 - 61;
  assert.equal(await source(), idToken(13_600, "second"));
  assert.deepEqual(refreshes, ["r"]);
  now = 13_600 - 30;
  await source();
  assert.deepEqual(refreshes, ["r", "r"]);
});

test("a refused refresh reaches the caller, and the next call tries again", async () => {
  let refuse = true;
  const source = tokenSource(
    { IdToken: idToken(100, "first"), RefreshToken: "r" },
    async () => {
      if (refuse) throw new Error("Refresh Token has expired");
      return { IdToken: idToken(3_700, "second") };
    },
    () => 100,
  );
  await assert.rejects(source(), /Refresh Token has expired/);
  refuse = false;
  assert.equal(await source(), idToken(3_700, "second"));
});
