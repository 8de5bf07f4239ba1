namespace MoCo.Actors.Collectives.Nccl;

/// <summary>
/// What the NCCL data plane needs, as found on this host at start-up: CUDA devices seen by TorchSharp, libcudart, and
/// libnccl with its version. <see cref="Message"/> says it in one line for a person.
/// </summary>
/// <param name="CudaDeviceCount">CUDA devices TorchSharp sees (0 when CUDA is not available to it).</param>
/// <param name="CudaProblem">Why asking TorchSharp about CUDA failed, when it threw; null otherwise.</param>
/// <param name="CudaRuntime">How loading libcudart went.</param>
/// <param name="Nccl">How loading libnccl went.</param>
/// <param name="NcclVersion">What <c>ncclGetVersion</c> reported, or null when libnccl is absent or the call failed.</param>
/// <param name="NcclVersionProblem">Why <c>ncclGetVersion</c> failed, when it did; null otherwise.</param>
public sealed record NcclProbeResult(
    int CudaDeviceCount,
    string? CudaProblem,
    NativeLibraryLoad CudaRuntime,
    NativeLibraryLoad Nccl,
    NcclVersion? NcclVersion,
    string? NcclVersionProblem)
{
    /// <summary>The first missing piece, or <see cref="NcclProbeStatus.Available"/>.</summary>
    public NcclProbeStatus Status =>
        CudaDeviceCount <= 0 ? NcclProbeStatus.CudaAbsent
        : !CudaRuntime.IsLoaded ? NcclProbeStatus.CudaRuntimeAbsent
        : !Nccl.IsLoaded ? NcclProbeStatus.NcclAbsent
        : NcclVersion is not { } version || !version.IsAtLeast(Collectives.Nccl.NcclVersion.Minimum) ? NcclProbeStatus.NcclUnsupported
        : NcclProbeStatus.Available;

    /// <summary>Whether the NCCL data plane can run here.</summary>
    public bool IsAvailable => Status == NcclProbeStatus.Available;

    /// <summary>
    /// One clause per missing piece, each naming it and what to do: "CUDA absent (...)", "libcudart absent (tried ...)",
    /// "libnccl absent (tried libnccl.so.2, libnccl.so: not found; add the directory holding one of them to
    /// LD_LIBRARY_PATH)", "libnccl 2.12.12 found (libnccl.so.2) but older than 2.14.0". Empty when available.
    /// </summary>
    public IReadOnlyList<string> Problems
    {
        get
        {
            var problems = new List<string>();
            if (CudaDeviceCount <= 0)
            {
                problems.Add(CudaClause());
            }

            if (!CudaRuntime.IsLoaded)
            {
                problems.Add(CudaRuntime.Describe("libcudart"));
            }

            if (!Nccl.IsLoaded || Status == NcclProbeStatus.NcclUnsupported)
            {
                problems.Add(NcclClause());
            }

            return problems;
        }
    }

    /// <summary>
    /// One line: "NCCL data plane available: libnccl 2.21.5 found (libnccl.so.2); 8 CUDA devices; libcudart found
    /// (libcudart.so.12)", or "NCCL data plane unavailable: " and every problem.
    /// </summary>
    public string Message => IsAvailable
        ? $"NCCL data plane available: {NcclClause()}; {CudaClause()}; {CudaRuntime.Describe("libcudart")}"
        : $"NCCL data plane unavailable: {string.Join("; ", Problems)}";

    /// <inheritdoc />
    public override string ToString()
    {
        return Message;
    }

    private string CudaClause()
    {
        if (CudaDeviceCount > 0)
        {
            return CudaDeviceCount == 1 ? "1 CUDA device" : $"{CudaDeviceCount} CUDA devices";
        }

        return CudaProblem is null
            ? "CUDA absent (TorchSharp sees no CUDA device: torch.cuda.is_available() is false, so the libtorch package is a CPU-only build such as libtorch-cpu-linux-x64, or no NVIDIA driver and device are visible)"
            : $"CUDA absent (asking TorchSharp failed: {CudaProblem})";
    }

    private string NcclClause()
    {
        if (!Nccl.IsLoaded)
        {
            return Nccl.Describe("libnccl");
        }

        if (NcclVersion is not { } version)
        {
            return $"libnccl found ({Nccl.LoadedName}) but ncclGetVersion failed: {NcclVersionProblem ?? "no version reported"}";
        }

        return version.IsAtLeast(Collectives.Nccl.NcclVersion.Minimum)
            ? $"libnccl {version} found ({Nccl.LoadedName})"
            : $"libnccl {version} found ({Nccl.LoadedName}) but older than {Collectives.Nccl.NcclVersion.Minimum}, the first with non-blocking communicators";
    }
}
