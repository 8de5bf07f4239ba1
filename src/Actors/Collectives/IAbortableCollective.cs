using MoCo.Model.Collectives;

namespace MoCo.Actors.Collectives;

/// <summary>
/// A network collective a worker owns and may abort from its failure path, so that no peer waits for a rank that gave
/// up: the TCP ring and NCCL.
/// </summary>
public interface IAbortableCollective : ICollective
{
    /// <summary>Fails the call in progress and every later call with a <see cref="CollectiveException"/>; safe more than once.</summary>
    void Abort();
}
