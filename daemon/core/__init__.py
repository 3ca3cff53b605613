"""The pure core: calendar, holidays, rules, deadlines and the engine's decisions.

Nothing here touches a database, the clock, the network or the file system at decision time: every
function takes the instant it decides for (``now``) as an argument. Every rule about time or a case's state
lives here and nowhere else; the store, the import, the tick and the reports call it.
"""
