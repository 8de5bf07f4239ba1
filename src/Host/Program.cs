Console.WriteLine("moco");
