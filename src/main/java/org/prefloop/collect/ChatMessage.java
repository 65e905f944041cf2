package org.prefloop.collect;

/** One turn of a conversation, as chat APIs and TRL's conversational format write it. */
public record ChatMessage(String role, String content) {
}
