// Signing in to the local stack, and calling the quota API with the token it issues.
export async function signIn(sub, groups = []) {
  const response = await fetch("/local/token", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ sub, groups }),
  });
  const { token } = await response.json();
  return async function api(method, path, body) {
    const answer = await fetch(path, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body ? { "Content-Type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await answer.text();
    return { status: answer.status, body: text ? JSON.parse(text) : null };
  };
}
