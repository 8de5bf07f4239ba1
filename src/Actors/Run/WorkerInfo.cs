namespace MoCo.Actors.Run;

/// <summary>One worker of a run: a process driving one device.</summary>
/// <param name="WorkerId">Stable identity of the worker within the run (e.g. <c>node-a/cuda:0</c>).</param>
/// <param name="Node">The cluster node (host) the worker lives on.</param>
/// <param name="Device">The device it drives (<c>cpu</c>, <c>cuda:0</c>, ...).</param>
public sealed record WorkerInfo(string WorkerId, string Node, string Device) : IMocoMessage;
