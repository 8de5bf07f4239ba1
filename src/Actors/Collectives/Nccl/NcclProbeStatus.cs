namespace MoCo.Actors.Collectives.Nccl;

/// <summary>What <see cref="NcclProbe"/> found, the first missing piece first.</summary>
public enum NcclProbeStatus
{
    /// <summary>TorchSharp sees no CUDA device (a CPU-only libtorch, or no driver or device).</summary>
    CudaAbsent,

    /// <summary>CUDA devices, but no CUDA runtime library (libcudart) to set the device and poll the stream with.</summary>
    CudaRuntimeAbsent,

    /// <summary>CUDA is usable, but no libnccl loads.</summary>
    NcclAbsent,

    /// <summary>libnccl loads, but it is older than <see cref="NcclVersion.Minimum"/> or would not say its version.</summary>
    NcclUnsupported,

    /// <summary>CUDA devices, libcudart and a recent enough libnccl: the NCCL data plane can run.</summary>
    Available,
}
