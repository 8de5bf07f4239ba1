namespace MoCo.Actors;

/// <summary>
/// An event or snapshot the run recorder writes to the journal (and reads back to replay a run). These go through
/// <see cref="Serialization.MocoHyperionSerializer"/> with an allow-list of their own types; none of them is ever a
/// command to an actor.
/// </summary>
public interface IJournalMessage : IMocoMessage
{
}
