#!/usr/bin/env bash
# The README's Open Messaging flow ("The seed's flow, runnable") as one script: its bash blocks, in order, are the rest of
# this file (a test holds them equal). Needs a running server that allows webhooks to loopback
# (Parley__Webhooks__AllowPrivateNetworks=true; PARLEY, default http://localhost:8080), curl, jq and Node 20+.
# Run it from anywhere: bash examples/open-messaging.sh
set -euo pipefail
cd "$(dirname "$0")/.."
trap '[ -z "${RECEIVER:-}" ] || kill "$RECEIVER" 2>/dev/null || true' EXIT

PARLEY=${PARLEY:-http://localhost:8080}   # the server, started as above
RECEIVER_PORT=${RECEIVER_PORT:-9000}

# 1. a receiver for the channel side: verifies signatures, prints what arrives
WEBHOOK_SECRET=my-webhook-secret-0123456789 node examples/webhook-receiver.js $RECEIVER_PORT &
RECEIVER=$!

TOKEN=$(curl -s -u parley-demo-client:parley-demo-secret -d grant_type=client_credentials $PARLEY/oauth/token | jq -r .access_token)
API=$PARLEY/api/v2/conversations
H=(-H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json')

# 2. the integration (secret: 16+ characters; never echoed back in full)
INTEGRATION=$(curl -s "${H[@]}" -d "{\"name\":\"Partner SMS\",\"outboundNotificationWebhookUrl\":\"http://127.0.0.1:$RECEIVER_PORT/\",\"outboundNotificationWebhookSignatureSecretToken\":\"my-webhook-secret-0123456789\"}" \
  $API/messaging/integrations/open | jq -r .id)

# 3. the bot initiates contact (agentless outbound); the receiver prints the signed delivery
CONVERSATION=$(curl -s "${H[@]}" -d "{\"fromAddress\":\"$INTEGRATION\",\"toAddress\":\"+4930123456\",\"toAddressMessengerType\":\"open\",\"textBody\":\"Your order shipped. Anything else?\"}" \
  $API/messages/agentless | jq -r .conversationId)

# 4. the customer replies through the channel's middleware: it continues the same conversation
curl -s "${H[@]}" -d '{"channel":{"messageId":"sms-0001","from":{"id":"+4930123456","idType":"Phone"},"time":"2026-11-26T10:00:00.000Z"},"text":"No, thanks"}' \
  "$API/messages/$INTEGRATION/inbound/open/message?prefetchConversationId=true" | jq .conversationId

# 5. the backend ends it: 202; the receiver prints a signed Presence Disconnect event
CUSTOMER=$(curl -s "${H[@]}" $API/messages/$CONVERSATION | jq -r '.participants[] | select(.purpose=="customer") | .id')
curl -s -i -X PATCH "${H[@]}" -d '{"state":"disconnected"}' $API/messages/$CONVERSATION/participants/$CUSTOMER | head -1

# 6. a late inbound message is refused (409 conversation.ended), never added to the ended conversation
curl -s "${H[@]}" -d '{"channel":{"messageId":"sms-0002","from":{"id":"+4930123456","idType":"Phone"},"time":"2026-11-26T10:01:00.000Z"},"text":"hello?"}' \
  $API/messages/$INTEGRATION/inbound/open/message | jq .code

# 7. once the outbox has nothing pending for the integration, the receiver has printed every delivery
until [ "$(curl -s "${H[@]}" "$PARLEY/api/v2/parley/openmessaging/deliveries?state=Pending&integrationId=$INTEGRATION" | jq .total)" = 0 ]; do sleep 0.2; done
kill $RECEIVER
