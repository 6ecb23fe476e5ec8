'use strict';
// Points the official SDK at the Parley server under test, through the SDK's own gateway setting (docs/compatibility.md §OAuth token).
const platformClient = require('purecloud-platform-client-v2');

const BASE = process.env.PARLEY_URL;
if (!BASE) throw new Error('PARLEY_URL is not set: run the suite with tests/conformance/run.sh');
const url = new URL(BASE);
const WS_BASE = BASE.replace(/^http/, 'ws');
const DEPLOYMENT_ID = process.env.PARLEY_DEPLOYMENT_ID || 'd1e2a3b4-0000-4000-8000-000000000001';
const CLIENT_ID = process.env.PARLEY_CLIENT_ID || 'parley-demo-client';
const CLIENT_SECRET = process.env.PARLEY_CLIENT_SECRET || 'parley-demo-secret';

function gateway(client) {
  client.setGateway({ host: url.hostname, protocol: url.protocol.replace(':', ''), port: Number(url.port) });
  return client;
}

/** The SDK's singleton client, logged in with client credentials (once). */
let login;
async function sdk() {
  const client = gateway(platformClient.ApiClient.instance);
  login = login || client.loginClientCredentialsGrant(CLIENT_ID, CLIENT_SECRET);
  await login;
  return platformClient;
}

/** A separate SDK ApiClient (not the singleton), e.g. for a guest JWT or another OAuth client. */
function newClient() {
  return gateway(new platformClient.ApiClientClass());
}

module.exports = { platformClient, sdk, newClient, BASE, WS_BASE, DEPLOYMENT_ID, CLIENT_ID, CLIENT_SECRET };
