namespace MoCo.Actors;

/// <summary>
/// Marks every message, event and snapshot of our own. Two kinds cross a serializer boundary and say so:
/// <see cref="IJournalMessage"/> (the journal) and <see cref="IWireMessage"/> (remoting between processes); the others
/// stay in their process (commands from the command line, progress notices, the recorder's commands from the
/// director on the same node).
/// </summary>
public interface IMocoMessage
{
}
