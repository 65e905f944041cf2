package org.prefloop.platform;

/** Thrown to answer a request with a problem detail; nothing has been written when it is thrown. */
public final class ProblemException extends RuntimeException {
    private final int status;
    private final String field;

    public ProblemException(int status, String field, String detail) {
        super(detail);
        this.status = status;
        this.field = field;
    }

    public static ProblemException badRequest(String field, String detail) {
        return new ProblemException(400, field, detail);
    }

    public static ProblemException notFound(String field, String detail) {
        return new ProblemException(404, field, detail);
    }

    public static ProblemException conflict(String field, String detail) {
        return new ProblemException(409, field, detail);
    }

    public static ProblemException tooLarge(String detail) {
        return new ProblemException(413, null, detail);
    }

    public static ProblemException invalid(String field, String detail) {
        return new ProblemException(422, field, detail);
    }

    public int status() {
        return status;
    }

    public String field() {
        return field;
    }
}
