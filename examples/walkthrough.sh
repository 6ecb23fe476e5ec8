#!/usr/bin/env bash
# The README's "Walk-through: the seed scenario" as one script: its bash blocks, in order, are the rest of this file
# (a test holds them equal). Needs a running server (PARLEY, default http://localhost:8080), curl, jq and Node 20+.
# Run it from anywhere: bash examples/walkthrough.sh
set -euo pipefail
cd "$(dirname "$0")/.."
trap '[ -z "${GUEST:-}" ] || kill "$GUEST" 2>/dev/null || true' EXIT

# the server (started as above) and the demo deployment it prints
PARLEY=${PARLEY:-http://localhost:8080}
DEPLOYMENT=d1e2a3b4-0000-4000-8000-000000000001
CUSTOMER=crm-$RANDOM$RANDOM   # the guest's id in your CRM, as the page embedding the messenger would set it

# 1. a guest opens the web messenger: prints each frame it receives, answers the bot, and tries once more after the end
node --experimental-websocket examples/guest.js "$PARLEY" $DEPLOYMENT $CUSTOMER &
GUEST=$!

# 2. the bot's backend gets a token and finds the guest's session by its CRM id
TOKEN=$(curl -s -u parley-demo-client:parley-demo-secret -d grant_type=client_credentials $PARLEY/oauth/token | jq -r .access_token)
API=$PARLEY/api/v2
H=(-H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json')
until SESSION=$(curl -s "${H[@]}" "$API/parley/webmessaging/sessions?deploymentId=$DEPLOYMENT&customerId=$CUSTOMER" | jq -er '.entities[0].id'); do
  kill -0 $GUEST; sleep 0.2   # not connected yet (and the guest still running)
done
echo "session $SESSION"

# 3. the bot initiates contact: agentless, fromAddress the deployment, toAddress the guest session
CONVERSATION=$(curl -s "${H[@]}" -d "{\"fromAddress\":\"$DEPLOYMENT\",\"toAddress\":\"$SESSION\",\"toAddressMessengerType\":\"webmessaging\",\"textBody\":\"Your order shipped. Anything else?\"}" \
  $API/conversations/messages/agentless | jq -r .conversationId)
echo "conversation $CONVERSATION"

# 4. the guest answers "No, thanks" (examples/guest.js does); the bot replies on its communication
until curl -s "${H[@]}" $API/conversations/messages/$CONVERSATION | jq -e '.participants[] | select(.purpose=="customer") | .messages | length > 0' >/dev/null; do
  kill -0 $GUEST; sleep 0.2
done
COMMUNICATION=$(curl -s "${H[@]}" $API/conversations/$CONVERSATION | jq -r '.participants[] | select(.purpose=="workflow") | .messages[0].id')
curl -s "${H[@]}" -d '{"textBody":"Glad to help. Goodbye!"}' \
  $API/conversations/messages/$CONVERSATION/communications/$COMMUNICATION/messages | jq -c '{id, direction, textBody}'

# 5. the backend ends the session, for good: the customer participant, PATCHed; the guest is told before the answer
CUSTOMER_PARTICIPANT=$(curl -s "${H[@]}" $API/conversations/messages/$CONVERSATION | jq -r '.participants[] | select(.purpose=="customer") | .id')
curl -s -i -X PATCH "${H[@]}" -H 'Parley-Termination-Reason: compliance: interaction complete' -d '{"state":"disconnected"}' \
  $API/conversations/messages/$CONVERSATION/participants/$CUSTOMER_PARTICIPANT | grep -i -E '^HTTP|^parley-sockets-notified'
wait $GUEST   # the guest has printed the Disconnect frame, and the 409 its next message got

# 6. everything agrees: analytics has the end; the audit says who, which lever, why, how many sockets were told
curl -s "${H[@]}" $API/analytics/conversations/$CONVERSATION/details \
  | jq -c '{conversationEnd, disconnectType: [.participants[] | {(.purpose): .sessions[0].segments[-1].disconnectType}] | add}'
curl -s "${H[@]}" "$API/parley/audit/terminations?conversationId=$CONVERSATION" \
  | jq -c '.entities[] | {lever, client: .client.id, reason, socketsNotified}'

# 7. the seed's own call gets the truth instead of a 204
curl -s "${H[@]}" -d '{"conversationId":"conv-12345","participantId":"guest-67890","type":"hangup"}' \
  $API/conversations/messaging/events | jq -c '{status, code, message}'
