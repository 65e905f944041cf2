package org.prefloop.train;

import com.sun.jna.NativeLibrary;
import com.sun.jna.Structure;

/** glibc's own accounting of malloc (mallinfo2, glibc 2.33+), summed over every arena. */
final class TrainingAllocatorProbe {
    private TrainingAllocatorProbe() {
    }

    /** struct mallinfo2: every field a size_t. */
    @Structure.FieldOrder({"arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost"})
    public static class MallInfo2 extends Structure implements Structure.ByValue {
        public long arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
    }

    static boolean available() {
        try {
            NativeLibrary.getInstance("c").getFunction("mallinfo2");
            return true;
        } catch (UnsatisfiedLinkError e) {
            return false;
        }
    }

    static MallInfo2 read() {
        return (MallInfo2) NativeLibrary.getInstance("c").getFunction("mallinfo2").invoke(MallInfo2.class, new Object[0]);
    }

    /** Bytes in blocks that have their own mapping (at or above the mmap threshold). */
    static long mmappedBytes() {
        return read().hblkhd;
    }

    /** Bytes freed into the arenas and not given back: resident unless the pages were never touched or got trimmed. */
    static long freeKeptBytes() {
        return read().fordblks;
    }
}
