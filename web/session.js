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
  return answer.AuthenticationResult.IdToken;
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
    let token;
    try {
      if (event.submitter?.value === "signUp") await signUp(email.value, password.value);
      token = await signIn(email.value, password.value);
    } catch (refusal) {
      error.textContent = refusal.message;
      error.hidden = false;
      return;
    }
    await signedIn(async () => token);
  });
}
