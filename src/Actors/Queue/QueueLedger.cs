namespace MoCo.Actors.Queue;

/// <summary>
/// Which step wrote each slot of the MoCo queue, as a pure function of the global step. Every run starts with the
/// pointer at 0, and step s enqueues the <see cref="KeysPerStep"/> keys of its whole global batch at
/// <c>s·n mod K</c>, wrapping around; so after S steps the pointer is <c>S·n mod K</c> and slot j holds the keys of the
/// last step whose write covered j. Nothing needs to be stored to know the age of any key.
/// </summary>
public sealed class QueueLedger
{
    /// <summary>Creates the ledger of a queue of <paramref name="capacity"/> keys fed <paramref name="keysPerStep"/> per step.</summary>
    /// <param name="capacity">K, the queue's length.</param>
    /// <param name="keysPerStep">Keys enqueued per step: the global batch, twice with the symmetric loss.</param>
    public QueueLedger(int capacity, int keysPerStep)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(keysPerStep, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(keysPerStep, capacity);
        Capacity = capacity;
        KeysPerStep = keysPerStep;
    }

    /// <summary>K, the queue's length.</summary>
    public int Capacity { get; }

    /// <summary>Keys enqueued per step.</summary>
    public int KeysPerStep { get; }

    /// <summary>The write pointer after <paramref name="stepsDone"/> steps.</summary>
    /// <param name="stepsDone">Steps completed since the start of the run.</param>
    public long Pointer(long stepsDone)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(stepsDone);
        return (long)((UInt128)(ulong)stepsDone * (ulong)KeysPerStep % (ulong)Capacity);
    }

    /// <summary>Slots holding keys of some step (the rest still hold the random initial keys).</summary>
    /// <param name="stepsDone">Steps completed since the start of the run.</param>
    public int Filled(long stepsDone)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(stepsDone);
        var written = (UInt128)(ulong)stepsDone * (ulong)KeysPerStep;
        return written >= (UInt128)(ulong)Capacity ? Capacity : (int)written;
    }

    /// <summary>The step that last wrote each slot after <paramref name="stepsDone"/> steps, or -1 for a slot never written.</summary>
    /// <param name="stepsDone">Steps completed since the start of the run.</param>
    public long[] WrittenAt(long stepsDone)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(stepsDone);
        var slots = new long[Capacity];
        Array.Fill(slots, -1L);
        // only the last ceil(K/n) steps can still own a slot; replay them oldest first
        long window = (Capacity + KeysPerStep - 1) / KeysPerStep;
        for (long s = Math.Max(0, stepsDone - window); s < stepsDone; s++)
        {
            long start = Pointer(s);
            for (int i = 0; i < KeysPerStep; i++)
            {
                slots[(start + i) % Capacity] = s;
            }
        }

        return slots;
    }

    /// <summary>
    /// The age in steps of the oldest key after <paramref name="stepsDone"/> steps: 0 for keys of the last step,
    /// and null while some slot still holds its random initial key.
    /// </summary>
    /// <param name="stepsDone">Steps completed since the start of the run.</param>
    public long? OldestKeyAge(long stepsDone)
    {
        if (Filled(stepsDone) < Capacity)
        {
            return null;
        }

        return stepsDone - 1 - WrittenAt(stepsDone).Min();
    }
}
