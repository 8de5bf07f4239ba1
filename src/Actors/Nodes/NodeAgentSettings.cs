using MoCo.Actors.Collectives;
using MoCo.Actors.Training;
using MoCo.Model.Training;

namespace MoCo.Actors.Nodes;

/// <summary>What a node offers and how its workers run. A local object, never a message.</summary>
/// <param name="Devices">Worker slots this node offers.</param>
/// <param name="Threads">CPU cores the node's workers share.</param>
/// <param name="LoaderThreads">Data loader threads per worker.</param>
/// <param name="RunDirectory">Where this node's workers keep run files (none are written by non-zero ranks today).</param>
/// <param name="DataPlane">The node's ring listeners and the cluster's secret.</param>
public sealed record NodeAgentSettings(int Devices, int Threads, int LoaderThreads, string RunDirectory, RingSettings DataPlane)
{
    /// <summary>How long a collective waits for a peer before the generation is declared broken.</summary>
    public TimeSpan CollectiveTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Where the node's workers compute (the i-th on <c>cuda:i</c> when CUDA).</summary>
    public ComputeDevice Device { get; init; } = ComputeDevice.Cpu;

    /// <summary>The node's data plane, offered with its devices; a run takes only nodes on its own.</summary>
    public DataPlaneKind Backend { get; init; } = DataPlaneKind.Tcp;

    /// <summary>How the node's workers' gradients travel.</summary>
    public GradientBucketing Bucketing { get; init; } = GradientBucketing.Default;

    /// <summary>Whether the node's workers run the numerical self-check before their first step (MoCo.Model.Diagnostics.NumericsGate).</summary>
    public bool NumericsCheck { get; init; } = true;

    /// <summary>
    /// How long the node keeps its workers alive after their director's process was lost while another trainer-role
    /// member (a standby) is Up, for the director that takes the run over; then they stop.
    /// </summary>
    public TimeSpan TakeoverWait { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Bytes of decoded images an image folder may cache (MoCo.Model.Data.DataSourceOptions.CacheBudgetBytes); null: half the available memory.</summary>
    public long? ImageCacheBytes { get; init; }
}
