using System.Runtime.InteropServices;

namespace MoCo.Model.Diagnostics;

/// <summary>
/// A test mode for reads of memory nobody wrote: every CPU allocation libtorch makes from then on (tensors of ours,
/// libtorch's and oneDNN's buffers alike) is filled with a NaN pattern, so that a read before write shows as NaN at
/// once instead of as whatever the memory held before. It sets libc10's own switch,
/// <c>FLAGS_caffe2_cpu_allocator_do_junk_fill</c> (pattern 0x7fedbeef: NaN as float32, huge as an integer).
/// Costs a memset per allocation: for tests, never for training.
/// </summary>
public static class AllocatorPoison
{
    private const string JunkFillFlag = "FLAGS_caffe2_cpu_allocator_do_junk_fill";

    /// <summary>The environment variable that turns the mode on for a process (<c>1</c>), read by <see cref="EnableFromEnvironment"/>.</summary>
    public const string Variable = "MOCO_POISON_ALLOCATIONS";

    /// <summary>Whether the mode is on in this process.</summary>
    public static bool Enabled { get; private set; }

    /// <summary>Turns the mode on for the rest of the process. Throws when this libtorch does not have the switch.</summary>
    public static void Enable()
    {
        Marshal.WriteByte(LibC10.Flag(JunkFillFlag), 1);
        Enabled = true;
    }

    /// <summary>Turns the mode on when <see cref="Variable"/> is <c>1</c>; returns whether it is on.</summary>
    public static bool EnableFromEnvironment()
    {
        if (Environment.GetEnvironmentVariable(Variable) == "1")
        {
            Enable();
        }

        return Enabled;
    }
}
