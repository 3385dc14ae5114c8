// Signing up and in with the user pool through Cognito's own API (the JSON requests a page would
// send to https://cognito-idp.<region>.amazonaws.com/; here, the local stack's Cognito endpoint),
// for the ID token the quota API takes.
export const config = await (await fetch("/local/config")).json();

async function cognito(action, request) {
  const answer = await fetch(config.cognitoEndpoint, {
    method: "POST",
    headers: {
      "Content-Type": "application/x-amz-json-1.1",
      "X-Amz-Target": `AWSCognitoIdentityProviderService.${action}`,
    },
    body: JSON.stringify({ ClientId: config.userPoolClientId, ...request }),
  });
  const body = await answer.json();
  if (!answer.ok) throw new Error(body.message || body.__type);
  return body;
}

// The local stack confirms a new account at once (it sends no code by email).
function signUp(email, password) {
  return cognito("SignUp", {
    Username: email,
    Password: password,
    UserAttributes: [{ Name: "email", Value: email }],
  });
}

// USER_PASSWORD_AUTH: the local pool's client allows it (moto checks no SRP password); the
// deployed client allows only SRP, which a deployed page would do with Amplify.
async function signIn(email, password) {
  const answer = await cognito("InitiateAuth", {
    AuthFlow: "USER_PASSWORD_AUTH",
    AuthParameters: { USERNAME: email, PASSWORD: password },
  });
  if (!answer.AuthenticationResult) throw new Error(`Cognito asks for ${answer.ChallengeName}`);
  return answer.AuthenticationResult;
}

async function refreshTokens(refreshToken) {
  const answer = await cognito("InitiateAuth", {
    AuthFlow: "REFRESH_TOKEN_AUTH",
    AuthParameters: { REFRESH_TOKEN: refreshToken },
  });
  return answer.AuthenticationResult;
}

// Cognito's ID tokens last an hour: one is refreshed this long before it expires, so a request
// never leaves with a token that expires on the way.
const REFRESH_MARGIN_SECONDS = 60;

function expiresAt(idToken) {
  const payload = idToken.split(".")[1].replaceAll("-", "+").replaceAll("_", "/");
  return JSON.parse(atob(payload)).exp;
}

// The getIdToken function the client library asks for: the signed-in user's ID token, refreshed
// with their refresh token when it nears its end. Callers asking together (parts uploading in
// parallel) share one refresh.
export function tokenSource(signedIn, refresh = refreshTokens, now = () => Date.now() / 1000) {
  let idToken = signedIn.IdToken;
  let refreshing = null;
  return () => {
    if (expiresAt(idToken) - now() > REFRESH_MARGIN_SECONDS) return Promise.resolve(idToken);
    refreshing ??= refresh(signedIn.RefreshToken)
      .then((result) => {
        idToken = result.IdToken;
        return idToken;
      })
      .finally(() => {
        refreshing = null;
      });
    return refreshing;
  };
}

// A sign-in form (email, password, and "Sign in" / "Sign up" buttons): calls signedIn with a
// getIdToken function for each user signed in (what the client library asks for), or shows
// Cognito's refusal in the form.
export function onSignIn(form, signedIn) {
  const error = form.querySelector("[role=alert]");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const { email, password } = form.elements;
    error.hidden = true;
    let tokens;
    try {
      if (event.submitter?.value === "signUp") await signUp(email.value, password.value);
      tokens = await signIn(email.value, password.value);
    } catch (refusal) {
      error.textContent = refusal.message;
      error.hidden = false;
      return;
    }
    await signedIn(tokenSource(tokens));
  });
}
