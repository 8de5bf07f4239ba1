using System.Runtime.InteropServices;

namespace MoCo.Model.Diagnostics;

/// <summary>libtorch's own log lines (c10's <c>LOG(...)</c>, printed to stderr), which our commands do not want on a terminal.</summary>
public static class TorchLogging
{
    private const string LevelFlag = "FLAGS_caffe2_log_level";
    private const int Error = 2;

    /// <summary>
    /// Drops c10's warnings, keeping its errors: on CPUs NNPACK does not support, libtorch logs "Could not initialize
    /// NNPACK! Reason: Unsupported hardware" at every convolution that does not take oneDNN (a small batch on one thread,
    /// float64), which says nothing about the result (the convolution then takes libtorch's own im2col path).
    /// TorchSharp's and libtorch's warnings raised as exceptions or through TORCH_WARN are not affected.
    /// </summary>
    public static void QuietWarnings() => Marshal.WriteInt32(LibC10.Flag(LevelFlag), Error);
}
