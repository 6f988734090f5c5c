#!/usr/bin/env python3
"""An AG-UI command agent: a fake LLM that streams its answer, calls a tool
and keeps a state. Standard library only.

Declare it in tether.yaml:

    agents:
      - id: chat
        operations:
          chat: {command: ["./examples/agents/chat.py"]}

and run it from any AG-UI client (POST /ag-ui/agents/chat with a
RunAgentInput; see docs/ag-ui.md), or by hand:

    echo '{"threadId":"t","runId":"r","messages":[{"id":"u1","role":"user","content":"hi"}]}' \
        | TOKENS_PER_SEC=200 ./examples/agents/chat.py

It prints one AG-UI event per line. TOKENS_PER_SEC (default 40) sets how
fast it "generates". With APPROVE=1 (declare it interactive: true) it asks
a person before it searches, and reads the answer on stdin.
"""
import json
import os
import sys
import time
import uuid

RATE = float(os.environ.get("TOKENS_PER_SEC", "40"))
APPROVE = os.environ.get("APPROVE") == "1"


def emit(**event):
    print(json.dumps(event, separators=(",", ":")), flush=True)


def stream_text(message_id, text):
    """Emits text as a model would: word pieces at RATE a second."""
    emit(type="TEXT_MESSAGE_START", messageId=message_id, role="assistant")
    for i, word in enumerate(text.split(" ")):
        emit(type="TEXT_MESSAGE_CONTENT", messageId=message_id, delta=(" " if i else "") + word)
        time.sleep(1 / RATE)
    emit(type="TEXT_MESSAGE_END", messageId=message_id)


def main():
    run = json.loads(sys.stdin.readline() or "null") or {}
    messages = run.get("messages") or []
    question = next((m.get("content") for m in reversed(messages)
                     if m.get("role") == "user" and isinstance(m.get("content"), str)), "nothing in particular")
    state = run.get("state") if isinstance(run.get("state"), dict) else {}

    # The UI draws the state: a list of steps and how far the agent is.
    emit(type="STATE_SNAPSHOT", snapshot={**state, "question": question, "steps": [], "searches": 0})

    emit(type="STEP_STARTED", stepName="think")
    emit(type="STATE_DELTA", delta=[{"op": "add", "path": "/steps/-", "value": "think"}])
    thinking = "msg-" + uuid.uuid4().hex[:8]
    stream_text(thinking, "Let me look that up before I answer.")
    emit(type="STEP_FINISHED", stepName="think")

    if APPROVE:
        # Tether's input request: the operation waits (waiting_input) until
        # its owner answers; the answer comes as one line on stdin.
        print(json.dumps({"input_request": {"id": "approve-search", "prompt": "Search the web for %r?" % question,
                                            "schema": {"type": "boolean"}}}), flush=True)
        answer = json.loads(sys.stdin.readline() or "{}")
        if answer.get("value") is not True:
            emit(type="STATE_DELTA", delta=[{"op": "add", "path": "/steps/-", "value": "declined"}])
            stream_text("msg-" + uuid.uuid4().hex[:8], "Understood: I will not search.")
            print(json.dumps({"result": {"searches": 0}}), flush=True)
            return

    # A tool call whose arguments stream like the text does.
    emit(type="STEP_STARTED", stepName="search")
    emit(type="STATE_DELTA", delta=[{"op": "add", "path": "/steps/-", "value": "search"}])
    call = "call-" + uuid.uuid4().hex[:8]
    emit(type="TOOL_CALL_START", toolCallId=call, toolCallName="search", parentMessageId=thinking)
    args = json.dumps({"query": question})
    for i in range(0, len(args), 4):
        emit(type="TOOL_CALL_ARGS", toolCallId=call, delta=args[i:i + 4])
        time.sleep(1 / RATE)
    emit(type="TOOL_CALL_END", toolCallId=call)
    results = ["Tether stores every event", "AG-UI clients resume with Last-Event-ID"]
    emit(type="TOOL_CALL_RESULT", messageId="result-" + call, toolCallId=call, content=json.dumps(results))
    emit(type="STATE_DELTA", delta=[{"op": "replace", "path": "/searches", "value": 1}])
    emit(type="STEP_FINISHED", stepName="search")

    emit(type="STEP_STARTED", stepName="answer")
    emit(type="STATE_DELTA", delta=[{"op": "add", "path": "/steps/-", "value": "answer"}])
    answer = "msg-" + uuid.uuid4().hex[:8]
    stream_text(answer, "You asked about %s. I found %d results: %s." % (question, len(results), "; ".join(results)))
    emit(type="STEP_FINISHED", stepName="answer")

    print(json.dumps({"result": {"answer_message_id": answer, "searches": 1}}), flush=True)


if __name__ == "__main__":
    main()
